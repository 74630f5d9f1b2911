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
from datetime import UTC, datetime

from aiokafka import TopicPartition

from segmentation import Definitions, Transition
from streams.settings import Settings
from streams.store.definitions_record import InMemoryDefinitionsRecord
from streams.store.port import InMemoryStateStore, StateStore
from streams.worker.namespace_follow import check_claim
from tests.contract.test_state_store import StoreFactory, make_store
from tests.contract.test_sweep_mark import Consumer, Killed, Publishing, _purchase
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
