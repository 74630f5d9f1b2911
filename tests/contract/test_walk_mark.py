"""A lazy-adoption walk's page published, then its owner killed before the page's commit: the next owner must
make the same moves before it applies its backlog (`streams/worker/realign.py`, `sweep_mark`).

c1 bought on 1 January under the default definitions (due `active` on the 31st). The adopted definitions make
it `active` on the 6th and `at_risk` on the 11th. The adopting live owner's walk, on the 16th, publishes those
moves and dies before committing them. A purchase of c1 dated 10 January 23:59:59 reaches the topic after it.
A continuous run applies it as a late event: `at_risk -> active`. Without the mark, the next owner applied it
to the stored state of the old definitions first: c1 never went `at_risk`, nothing undid the published move,
and the topic's last word on c1 was `at_risk` while the store held `active`. The interleaving is forced: the
walk page's commit raises after its publication. The crash runs on both stores; the continuous run in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition

from segmentation import Definitions, Transition
from segmentation.instants import to_us
from segmentation.state_mapping import state_from_mapping
from streams.settings import Settings
from streams.store.definitions_record import InMemoryDefinitionsRecord
from streams.store.port import Claim, InMemoryStateStore, StateStore
from streams.worker import realign
from streams.worker.namespace_follow import check_claim
from tests.contract.test_state_store import StoreFactory, make_store
from tests.contract.test_sweep_mark import Consumer, Killed, Publishing, SlowClaimCheck, _purchase
from tests.unit.seg_helpers import definitions_with, home_ids

__all__ = ["make_store"]  # the fixture: memory and redis

(C1,) = home_ids("c", 0, 1)  # in partition 0
OLD = Definitions.default()
NEW = definitions_with(
    lifecycle={"new_for_days": 5, "at_risk_after_days": 10, "lost_after_days": 60, "reactivated_for_days": 5},
    version="adopt-new",
)
WALL = datetime(2026, 1, 16, tzinfo=UTC)
BOUGHT = _purchase(0, datetime(2026, 1, 1, tzinfo=UTC), C1)
LATE = _purchase(1, datetime(2026, 1, 10, 23, 59, 59, tzinfo=UTC), C1)
TP = TopicPartition("events", 0)


class Ends(Consumer):
    """The topic's end when the worker claims: before LATE (the walk's owner is caught up), or after it."""

    def __init__(self, end: int) -> None:
        self.end = end

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.end for tp in tps}

    def highwater(self, tp: TopicPartition) -> int:
        return self.end


def _worker(
    store: StateStore, names: InMemoryDefinitionsRecord, definitions: Definitions, end: int = 1
) -> Publishing:
    settings = Settings(mode="live", namespace="main", adopt_definitions=definitions is NEW)
    worker = Publishing(settings, definitions, store, object(), Ends(end), lambda: WALL)
    worker.published, worker.recorded = [], names
    return worker


def _moves(transitions: list[Transition]) -> list[tuple[str, str, str | None, str | None, str]]:
    """c1's moves as a consumer of the topic keeps them: by id, the first copy of each."""
    seen: dict[str, tuple[str, str, str | None, str | None, str]] = {}
    for t in transitions:
        if t.customer_id == C1:
            seen.setdefault(t.id, (t.id, t.grid, t.from_segment, t.to_segment, t.cause))
    return list(seen.values())


async def _bought_then_adopted(store: StateStore) -> InMemoryDefinitionsRecord:
    """c1 bought under the old definitions; then a worker of the new ones starts with adoption on."""
    names = InMemoryDefinitionsRecord()
    await check_claim(names, "main", OLD.version, False)
    first = _worker(store, names, OLD)
    await first.take(TP)
    await first.process(0, [BOUGHT])
    await check_claim(names, "main", NEW.version, True)
    return names


async def _continuous() -> tuple[list[Transition], str]:
    store = InMemoryStateStore()
    names = await _bought_then_adopted(store)
    adopting = _worker(store, names, NEW)
    await adopting.take(TP)
    await adopting.sweep(force=True)  # the walk, on the 16th
    await adopting.process(0, [LATE])
    return adopting.published, (await store.load(0, [C1]))[C1]["lifecycle"]


async def _crashed(factory: StoreFactory) -> tuple[list[Transition], str, str | None]:
    store, close = await factory()
    try:
        names = await _bought_then_adopted(store)
        killed = _worker(store, names, NEW)
        await killed.take(TP)
        killed.die_after_sweep_publish = True
        try:
            await killed.sweep(force=True)
        except Killed:
            pass
        else:
            raise AssertionError("the walk's page committed: nothing was forced")
        second = _worker(store, names, NEW, end=2)
        await second.take(TP)
        await second.process(0, [LATE])
        stored = (await store.load(0, [C1]))[C1]
        walked = names.fields["main"].get("realigned:0")
        return killed.published + second.published, stored["lifecycle"], walked
    finally:
        await close()


def test_the_next_owner_walks_at_the_mark_before_its_backlog(make_store: StoreFactory) -> None:
    continuous, lifecycle = asyncio.run(_continuous())
    lifecycle_moves = [m[2:] for m in _moves(continuous) if m[1] == "lifecycle"]
    assert lifecycle_moves[-3:] == [
        ("new", "active", "time"),
        ("active", "at_risk", "time"),
        ("at_risk", "active", "e1"),
    ]
    assert lifecycle == "active"
    crashed, stored, walked = asyncio.run(_crashed(make_store))
    assert _moves(crashed) == _moves(continuous)  # the same moves, ids and order
    assert stored == "active"
    assert walked is not None and walked.startswith("adopt-new "), "the walk is recorded done"


def test_a_poll_loop_sweep_while_the_claim_awaits_pays_the_walk_too() -> None:
    """Second review: the poll loop swept a partition `take` had claimed (its mark owed) before `take` had
    read which walk was pending, paid the mark without the walk, and the backlog then went first: the killed
    page's `at_risk` stayed the topic's last word. The walk is now read before the claim and set with it."""

    async def scenario() -> tuple[list[Transition], str]:
        store = InMemoryStateStore()
        names = await _bought_then_adopted(store)
        killed = _worker(store, names, NEW)
        await killed.take(TP)
        killed.die_after_sweep_publish = True
        with pytest.raises(Killed):
            await killed.sweep(force=True)
        settings = Settings(mode="live", namespace="main", adopt_definitions=True)
        second = SlowClaimCheck(settings, NEW, store, object(), Ends(2), lambda: WALL)
        second.published, second.recorded, second.gate = [], names, asyncio.Event()
        take = asyncio.create_task(second.take(TP))  # the assign callback, held at its second check
        while second.checks < 2:
            await asyncio.sleep(0)
        await second.sweep()  # the poll loop, in between
        second.gate.set()
        await take
        await second.process(0, [LATE])
        return killed.published + second.published, (await store.load(0, [C1]))[C1]["lifecycle"]

    continuous, _ = asyncio.run(_continuous())
    crashed, lifecycle = asyncio.run(scenario())
    assert _moves(crashed) == _moves(continuous)
    assert lifecycle == "active"


def test_a_mark_whose_moves_were_committed_leaves_the_walk_lazy() -> None:
    """Second review: `swept` stayed after the commit of the moves it marked, so the first claim after any
    adoption found a mark and walked the whole partition before its first batch (holding the poll loop:
    past max.poll.interval.ms on a large partition). A committed sweep clears its mark; the adopting owner's
    first sweep walks one page (SEGSTREAM_SWEEP_MAX_CUSTOMERS) of the four customers."""
    customers = home_ids("w", 0, 4)

    def worker(store: StateStore, names: InMemoryDefinitionsRecord, wall: datetime, new: bool) -> Publishing:
        settings = Settings(mode="live", namespace="main", adopt_definitions=new, sweep_max_customers=1)
        built = Publishing(settings, NEW if new else OLD, store, object(), Ends(4), lambda: wall)
        built.published, built.recorded = [], names
        return built

    async def scenario() -> tuple[bool, bool, int]:
        store, names = InMemoryStateStore(), InMemoryDefinitionsRecord()
        await check_claim(names, "main", OLD.version, False)
        old = worker(store, names, datetime(2026, 2, 15, tzinfo=UTC), False)
        await old.take(TP)
        buys = [_purchase(n, datetime(2026, 1, 1, tzinfo=UTC), cid) for n, cid in enumerate(customers)]
        await old.process(0, buys)
        await old.sweep(force=True)  # new -> active for all four, published and committed
        assert old.published and (await store.claim(0)).swept_us is None
        await check_claim(names, "main", NEW.version, True)
        adopting = worker(store, names, datetime(2026, 3, 20, tzinfo=UTC), True)
        await adopting.take(TP)
        await adopting.sweep()
        owned = adopting.owned[0]
        moved = {t.customer_id for t in adopting.published if t.cause == "definitions"}
        return owned.realign is not None, "realigned:0" in names.fields["main"], len(moved)

    walking, recorded, moved = asyncio.run(scenario())
    assert (walking, recorded) == (True, False), "one page per sweep: the walk goes on"
    assert moved <= 1


V3 = definitions_with(
    lifecycle={"new_for_days": 3, "at_risk_after_days": 30, "lost_after_days": 60, "reactivated_for_days": 3},
    version="forced-v3",
)


class ApplyRacing(Publishing):
    """A forced `definitions apply` of V3 runs just before this worker's claim (it records V3, claims the
    partition, moves c1 to V3); the claim's second definitions check then waits on `gate`."""

    checks = 0
    gate: asyncio.Event
    apply: Callable[[], Awaitable[None]] | None

    async def own(self, partition: int) -> Claim:
        if self.apply is not None:
            apply, self.apply = self.apply, None
            await apply()
        return await super().own(partition)

    async def _definitions_allow(self) -> bool:
        self.checks += 1
        if self.checks == 2:
            await self.gate.wait()
        return await super()._definitions_allow()


def test_a_claim_its_definitions_check_refuses_walks_nothing_meanwhile() -> None:
    """Third review: with the walk set at the claim, a poll-loop sweep during the claim's second definitions
    check walked the partition with the definitions a forced apply had just replaced, moving every customer
    back and publishing it; the check then refused the claim. The poll loop now leaves a partition being
    taken alone."""

    async def scenario() -> tuple[bool, tuple[str, str], tuple[str, str], list[Transition]]:
        store = InMemoryStateStore()
        names = await _bought_then_adopted(store)  # c1 under OLD; NEW adopted, its walk pending

        async def forced_apply() -> None:
            await names.record("main", V3.version, adopted=False)
            applier = _worker(store, names, V3)
            await applier.own(0)
            owned = applier.owned[0]
            owned.realign = store.customer_ids(0)
            await realign.step(applier, InMemoryDefinitionsRecord(), owned, to_us(WALL), True)

        settings = Settings(mode="live", namespace="main", adopt_definitions=True)
        second = ApplyRacing(settings, NEW, store, object(), Ends(2), lambda: WALL)
        second.published, second.recorded, second.gate = [], names, asyncio.Event()
        second.apply = forced_apply
        take = asyncio.create_task(second.take(TP))
        while second.checks < 2:
            await asyncio.sleep(0)
        applied = await _version_and_lifecycle(store)
        await second.sweep()  # the poll loop, while the claim awaits its check
        second.gate.set()
        await take
        return 0 in second.owned, applied, await _version_and_lifecycle(store), second.published

    owned, applied, after, published = asyncio.run(scenario())
    assert applied[0] == "forced-v3"
    assert not owned, "the second check refuses the claim"
    assert (after, published) == (applied, []), "nothing moved back, nothing published"


async def _version_and_lifecycle(store: StateStore) -> tuple[str, str]:
    row = (await store.load(0, [C1]))[C1]
    return str(state_from_mapping(dict(row)).definitions_version), row["lifecycle"]
