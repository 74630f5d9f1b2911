"""A sweep's transitions published, then its owner killed before the commit: the next owner must make the same
moves before it applies its backlog, or the topic keeps a transition for a state no owner ever stored.

Found by review (7 December 2026): X is due `at_risk` at D; the caught-up live owner sweeps just after D and
publishes `active -> at_risk @D`; it dies before the sweep's commit. A purchase of X dated D - 1 s reaches the
topic after that sweep. A continuous run applies it as a late event: `at_risk -> active`. The next owner used
to apply it first, to the unswept state: X stayed `active`, nothing was published, and the topic's last word
on X was `at_risk`. The interleaving is forced: the owner's commit of the sweep raises after the publication.
The crash runs on both stores (in memory, real Redis); the continuous run, the reference, in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from segmentation import Definitions, Transition
from segmentation.instants import to_us
from streams.settings import Settings
from streams.store.port import InMemoryStateStore, StateStore
from streams.worker.batch import BatchResult, Record
from streams.worker.loop import Worker
from streams.worker.ownership import Owned
from tests.contract.test_state_store import StoreFactory, make_store
from tests.unit.seg_helpers import home_ids

__all__ = ["make_store"]  # the fixture: memory and redis

(X,) = home_ids("x", 0, 1)  # in partition 0
FIRST = datetime(2026, 3, 1, 12, tzinfo=UTC)
DUE = FIRST + timedelta(days=90)  # active -> at_risk (the default lifecycle)
WALL = DUE + timedelta(milliseconds=200)


def _purchase(offset: int, at: datetime, customer: str = X) -> Record:
    body = {
        "event_id": f"e{offset}", "type": "purchase", "customer_id": customer, "occurred_at": at.isoformat(),
        "schema_version": 1, "order_id": f"o{offset}", "amount": "10.00", "currency": "EUR", "channel": "web",
    }  # fmt: skip
    return Record("events", 0, offset, customer.encode(), orjson.dumps(body))


BOUGHT, LATE = _purchase(0, FIRST), _purchase(1, DUE - timedelta(seconds=1))


class Killed(Exception):
    """The process died here."""


class Publishing(Worker):
    """A worker whose publication is captured (a producer stands in: sweeps publish only with one)."""

    published: list[Transition]
    die_after_sweep_publish = False

    async def _publish(self, result: BatchResult) -> None:
        self.published.extend(result.transitions)

    async def _commit(
        self, owned: Owned, result: BatchResult, offset: int | None, watermark: int | None
    ) -> bool:
        if self.die_after_sweep_publish and result.writes and offset is None:  # a sweep's states
            raise Killed
        return await super()._commit(owned, result, offset, watermark)


class Consumer:
    """What `take` asks of Kafka: the end offsets, a seek, a resume."""

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 2 for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought = offset

    def resume(self, tp: TopicPartition) -> None:
        pass

    def pause(self, tp: TopicPartition) -> None:
        pass

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        pass

    def highwater(self, tp: TopicPartition) -> int:
        return 2

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("events", 0)}


def _worker(store: StateStore, consumer: Any = None, wall: datetime = WALL) -> Publishing:
    worker = Publishing(Settings(mode="live"), Definitions.default(), store, object(), consumer, lambda: wall)
    worker.published = []
    return worker


def _moves(transitions: list[Transition]) -> list[tuple[str, str | None, str | None, str]]:
    """X's lifecycle moves as a consumer of the topic keeps them: by id, the first copy of each."""
    seen: dict[str, tuple[str, str | None, str | None, str]] = {}
    for t in transitions:
        if t.customer_id == X and t.grid == "lifecycle":
            seen.setdefault(t.id, (t.id, t.from_segment, t.to_segment, t.cause))
    return list(seen.values())


async def _continuous() -> list[Transition]:
    worker = _worker(InMemoryStateStore(), Consumer())
    await worker.own(0)
    await worker.process(0, [BOUGHT])
    await worker.sweep(force=True)
    await worker.process(0, [LATE])
    return worker.published


async def _killed_between_publish_and_commit(factory: StoreFactory) -> tuple[list[Transition], str]:
    store, close = await factory()
    try:
        return await _two_owners(store)
    finally:
        await close()


async def _after_a_killed_sweep(store: StateStore) -> list[Transition]:
    """The first owner: X bought, then a sweep published and killed before its commit; what it published."""
    first = _worker(store, Consumer())
    await first.own(0)
    await first.process(0, [BOUGHT])
    first.die_after_sweep_publish = True
    try:
        await first.sweep(force=True)
    except Killed:
        return first.published
    raise AssertionError("the sweep committed: nothing was forced")


async def _two_owners(store: StateStore) -> tuple[list[Transition], str]:
    published = await _after_a_killed_sweep(store)
    second = _worker(store, Consumer())
    await second.take(TopicPartition("events", 0))
    await second.process(0, [LATE])
    stored = await store.load(0, [X])
    return published + second.published, stored[X]["lifecycle"]


def test_the_next_owner_makes_the_published_sweep_before_its_backlog(make_store: StoreFactory) -> None:
    continuous = _moves(asyncio.run(_continuous()))
    assert [m[1:] for m in continuous] == [
        (None, "new", "e0"),
        ("new", "active", "time"),
        ("active", "at_risk", "time"),
        ("at_risk", "active", "e1"),
    ]
    crashed, lifecycle = asyncio.run(_killed_between_publish_and_commit(make_store))
    assert _moves(crashed) == continuous  # the same moves, ids and order: at_risk is stored, then undone
    assert lifecycle == "active"


def test_a_mark_stays_only_for_a_publication_no_commit_followed() -> None:
    """The mark costs a commit: only a Kafka-fed worker's sweep with transitions to publish pays it (a replay
    is never taken over half way), and the sweep's own commit clears it: a mark left from a sweep that did
    commit made every later claim pay it again, and a lazy-adoption walk run whole at it
    (`test_walk_mark`)."""

    async def swept(bought: datetime, consumer: Consumer | None, killed: bool = False) -> int | None:
        store = InMemoryStateStore()
        worker = _worker(store, consumer)
        await worker.own(0)
        await worker.process(0, [_purchase(0, bought)])
        worker.die_after_sweep_publish = killed
        with contextlib.suppress(Killed):
            await worker.sweep(force=True)
        return (await store.claim(0)).swept_us

    assert asyncio.run(swept(WALL - timedelta(days=1), Consumer())) is None  # nobody due
    assert asyncio.run(swept(FIRST, None)) is None  # at_risk published by a replay
    assert asyncio.run(swept(FIRST, Consumer(), killed=True)) == to_us(WALL)
    assert asyncio.run(swept(FIRST, Consumer())) is None  # published and committed


class Tracking(Consumer):
    """A consumer that remembers which partitions are paused (`hold` pauses a new assignment)."""

    def __init__(self) -> None:
        self.paused: set[int] = {0}

    def pause(self, tp: TopicPartition) -> None:
        self.paused.add(tp.partition)

    def resume(self, tp: TopicPartition) -> None:
        self.paused.discard(tp.partition)


def test_the_poll_loop_sweeping_first_pays_the_mark_and_never_sweeps_past_the_backlog() -> None:
    """The new owner's first sweep (no batch yet), its wall clock 300 days on: it sweeps to the mark, then by
    event time while it catches up (never by its wall clock over the backlog); the late event follows."""
    later = WALL + timedelta(days=300)

    async def scenario() -> tuple[list[Transition], str, str]:
        store = InMemoryStateStore()
        await _after_a_killed_sweep(store)
        second = _worker(store, Consumer(), later)
        await second.take(TopicPartition("events", 0))
        await second.sweep(force=True)  # an idle partition is paid by its first sweep
        swept = (await store.load(0, [X]))[X]["lifecycle"]
        await second.process(0, [LATE])
        return second.published, swept, (await store.load(0, [X]))[X]["lifecycle"]

    published, swept, lifecycle = asyncio.run(scenario())
    moves = [("new", "active", "time"), ("active", "at_risk", "time"), ("at_risk", "active", "e1")]
    assert [m[1:] for m in _moves(published)] == moves  # the killed sweep's two again (same ids), then e1
    assert (swept, lifecycle) == ("at_risk", "active")


def test_a_partition_lost_in_the_owed_sweep_stays_paused_and_flagged() -> None:
    """Fenced out while it pays the mark (another claim: `definitions apply --force`, or the group moved the
    partition on): nothing of the batch is applied, the partition is paused and the fence noted (`heartbeat`
    stops the worker if Kafka keeps assigning it); it was resumed, unowned, records dropped in silence."""

    async def scenario() -> tuple[Publishing, Tracking, dict[str, str]]:
        store = InMemoryStateStore()
        await _after_a_killed_sweep(store)
        consumer = Tracking()
        second = _worker(store, consumer)
        await second.take(TopicPartition("events", 0))
        assert consumer.paused == set()
        await store.claim(0)  # someone else's claim, after ours
        await second.process(0, [LATE])
        return second, consumer, (await store.load(0, [X]))[X]

    second, consumer, stored = asyncio.run(scenario())
    assert 0 not in second.owned and 0 in second.fenced_since and consumer.paused == {0}
    assert stored["lifecycle"] == "new" and stored["_offset"] == "0:0"  # as the killed owner left it


class SlowClaimCheck(Publishing):
    """The claim's second definitions check (a Redis read in production) waits on `gate`: the poll loop runs
    while `take` is between its claim and its resume."""

    gate: asyncio.Event
    checks = 0

    async def _definitions_allow(self) -> bool:
        self.checks += 1
        if self.checks == 2:
            await self.gate.wait()
        return True


@pytest.mark.parametrize("how", ["fenced", "rewound"])
def test_a_partition_lost_by_the_poll_loop_while_take_awaits_is_not_resumed(how: str) -> None:
    """Second review: the poll loop loses a partition `take` has claimed and not resumed yet (another claim;
    a failover that lost ours), found by its idle check (its sweep did too, before the poll loop left a
    partition being taken alone). `take` then cleared the flags and resumed it: no owner, no flag, its
    records dropped in silence. It must stay paused and flagged."""

    async def scenario() -> tuple[bool, set[int], bool]:
        store = InMemoryStateStore()
        await _after_a_killed_sweep(store)
        consumer = Tracking()
        second = SlowClaimCheck(
            Settings(mode="live"), Definitions.default(), store, object(), consumer, lambda: WALL
        )
        second.published, second.gate = [], asyncio.Event()
        take = asyncio.create_task(second.take(TopicPartition("events", 0)))  # the assign callback
        while second.checks < 2:
            await asyncio.sleep(0)
        if how == "rewound":
            store._p(0).fence, store._p(0).owner = store._p(0).fence - 1, ""
        else:
            await store.claim(0)
        await second.heartbeat()  # the poll loop's idle check finds it lost
        second.gate.set()
        await take
        return 0 in second.owned, consumer.paused, 0 in second.fenced_since or 0 in second.retake

    owned, paused, flagged = asyncio.run(scenario())
    assert (owned, paused, flagged) == (False, {0}, True)


def test_a_replay_mode_worker_marks_its_watermark_sweep_too() -> None:
    """SEGSTREAM_MODE=replay sweeps by the watermark, at a point of the log that depends on where its batches
    end: the same crash (another customer's purchase after D moves the watermark; the sweep published, killed
    before its commit; X's purchase dated before D next in the log) gives the continuous run's moves."""
    (other,) = home_ids("y", 0, 1)
    moved, late = _purchase(1, DUE + timedelta(hours=1), other), _purchase(2, DUE - timedelta(seconds=1))

    def replaying(store: StateStore) -> Publishing:
        worker = Publishing(
            Settings(mode="replay"), Definitions.default(), store, object(), Consumer(), lambda: WALL
        )
        worker.published = []
        return worker

    async def continuous() -> list[Transition]:
        worker = replaying(InMemoryStateStore())
        await worker.own(0)
        await worker.process(0, [BOUGHT, moved])
        await worker.sweep(force=True)
        await worker.process(0, [late])
        return worker.published

    async def crashed() -> list[Transition]:
        store = InMemoryStateStore()
        first = replaying(store)
        await first.own(0)
        await first.process(0, [BOUGHT, moved])
        first.die_after_sweep_publish = True
        with pytest.raises(Killed):
            await first.sweep(force=True)
        second = replaying(store)
        await second.take(TopicPartition("events", 0))
        await second.process(0, [late])
        return first.published + second.published

    expected = _moves(asyncio.run(continuous()))
    assert [m[2:] for m in expected][-2:] == [("at_risk", "time"), ("active", "e2")]
    assert _moves(asyncio.run(crashed())) == expected
