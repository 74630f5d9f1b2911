"""No event is skipped around a rebalance, a gap in the offsets, or a Redis that went back in time.

The consumer here is a stand-in for aiokafka that keeps its rules that matter: a newly assigned partition is
fetched from the group's committed position unless paused or sought; `seek` moves the position and drops what
was fetched for the old one; `getmany` returns what is fetched for unpaused, assigned partitions. The races
are forced at the await where they happen (a hook in the store's `load` / `claim`), never left to timing.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from segmentation import CustomerState, Definitions, apply, parse_event
from segmentation.state_mapping import state_to_mapping
from streams.settings import Settings
from streams.store.history_format import FIELD, Entry, decode, entry_of
from streams.store.port import Claim, CustomerWrite, InMemoryStateStore
from streams.topics.partition_count import PartitionCountChanged
from streams.worker.batch import Record
from streams.worker.loop import Worker
from tests.unit.seg_helpers import home_ids

TOPIC = Settings().events_topic
T0 = datetime(2026, 1, 5, tzinfo=UTC)


@cache
def customer_ids(partition: int, customers: int) -> list[str]:
    """Ids in `partition` by Kafka's partitioner (4, the settings' default; from 4 on: the new ones)."""
    return home_ids(f"c{partition}-", partition, customers, 4 if partition < 4 else partition + 1)


def event(partition: int, offset: int, customers: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{partition}-{offset}",
            "type": "purchase",
            "customer_id": customer_ids(partition, customers)[offset % customers],
            "occurred_at": (T0 + timedelta(hours=offset)).isoformat(),
            "schema_version": 1,
            "order_id": f"o{partition}-{offset}",
            "amount": "10.00",
            "currency": "EUR",
            "channel": "web",
        }
    )


def log_of(partition: int, offsets: Iterable[int], customers: int = 3) -> list[Record]:
    """Keyed by customer id, as producers must."""
    return [
        Record(
            TOPIC,
            partition,
            o,
            customer_ids(partition, customers)[o % customers].encode(),
            event(partition, o, customers),
        )
        for o in offsets
    ]


def expected_customers(records: Sequence[Record]) -> dict[str, dict[str, str]]:
    """Every record applied exactly once, in log order, by the pure core."""
    states: dict[str, CustomerState] = {}
    moves: dict[str, list[Entry]] = {}
    definitions = Definitions.default()
    for rec in records:
        assert rec.value is not None
        ev = parse_event(rec.value)
        outcome = apply(states.get(ev.customer_id, CustomerState.new(ev.customer_id)), ev, definitions)
        states[ev.customer_id] = outcome.state
        moves.setdefault(ev.customer_id, []).extend(map(entry_of, outcome.transitions))
    return {
        cid: {**state_to_mapping(s), FIELD: repr(moves[cid])} if moves.get(cid) else state_to_mapping(s)
        for cid, s in states.items()
    }


def stored_customers(store: InMemoryStateStore, partition: int) -> dict[str, dict[str, str]]:
    """The stored hashes, the coded history decoded (its entries; the code depends on the batches)."""
    return {
        cid: {k: repr(decode(v)[0]) if k == FIELD else v for k, v in row.items() if not k.startswith("_")}
        for cid, row in store._p(partition).customers.items()
    }


class LogConsumer:
    """The consumer calls the worker makes, over in-memory partition logs (see the module docstring)."""

    def __init__(self, logs: dict[int, list[Record]], committed: dict[int, int] | None = None) -> None:
        self.logs = logs
        self.committed = committed or {}
        self.assigned: set[TopicPartition] = set()
        self.paused: set[TopicPartition] = set()
        self.positions: dict[int, int] = {}
        self.per_fetch = 10
        self.before_fetch: Callable[[int], Awaitable[None]] | None = None
        self.fetches = 0

    def assign(self, tps: Iterable[TopicPartition]) -> None:
        """A rebalance gave us these: fetched from the group's committed offset unless sought first."""
        self.assigned = set(tps)
        for tp in self.assigned:
            self.positions.setdefault(tp.partition, self.committed.get(tp.partition, 0))

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.logs)

    def _check(self, tp: TopicPartition) -> None:
        if tp not in self.assigned:
            raise IllegalStateError(f"no current assignment for partition {tp}")

    def pause(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._check(tp)
            self.paused.add(tp)

    def resume(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._check(tp)
            self.paused.discard(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._check(tp)
        self.positions[tp.partition] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._check(tp)
            log = self.logs[tp.partition]
            self.positions[tp.partition] = log[0].offset if log else 0

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: (self.logs[tp.partition][-1].offset + 1 if self.logs[tp.partition] else 0) for tp in tps}

    async def position(self, tp: TopicPartition) -> int:
        self._check(tp)
        return self.positions[tp.partition]

    def highwater(self, tp: TopicPartition) -> int | None:
        return None

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        return None

    async def getmany(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list]:  # type: ignore[type-arg]
        self.fetches += 1
        if self.before_fetch is not None:
            await self.before_fetch(self.fetches)
        await asyncio.sleep(0)
        out: dict[TopicPartition, list[Record]] = {}
        for tp in sorted(self.assigned - self.paused):
            position = self.positions[tp.partition]
            batch = [r for r in self.logs[tp.partition] if r.offset >= position][: self.per_fetch]
            if batch:
                out[tp] = batch
                self.positions[tp.partition] = batch[-1].offset + 1
        return out


async def stop_when(
    worker: Worker, store: InMemoryStateStore, ends: dict[int, int], timeout: float = 10
) -> None:
    """Stop the worker once every partition's stored offset reached its log's end."""
    deadline = asyncio.get_running_loop().time() + timeout
    while any(store._p(p).offset != end for p, end in ends.items()):
        if asyncio.get_running_loop().time() > deadline:
            worker.stop()
            raise AssertionError(f"not done: {[(p, store._p(p).offset) for p in ends]}")
        await asyncio.sleep(0.001)
    worker.stop()


def settings() -> Settings:
    return Settings(mode="replay", batch_max_ms=1, sweep_interval_ms=10_000)


class GatedStore(InMemoryStateStore):
    """`claim(gated)` waits for `gate`; the `load` of partition 0 numbered `opens_at` opens it and waits
    until the gated claim is done: the rebalance completes in the middle of the poll loop's batches."""

    def __init__(self, gated: int, opens_at: int) -> None:
        super().__init__()
        self.gated, self.opens_at = gated, opens_at
        self.gate, self.claimed, self.claim_waiting = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.loads = 0

    async def claim(self, partition: int) -> Claim:
        if partition == self.gated and not self.gate.is_set():
            self.claim_waiting.set()
            await self.gate.wait()
            claim = await super().claim(partition)
            self.claimed.set()
            return claim
        return await super().claim(partition)

    async def load(
        self, partition: int, customer_ids: Sequence[str], claim: Claim | None = None
    ) -> dict[str, dict[str, str]]:
        if partition == 0:
            self.loads += 1
            if self.loads == self.opens_at:
                self.gate.set()
                await self.claimed.wait()
                for _ in range(5):  # let the listener finish `take` (seek, resume)
                    await asyncio.sleep(0)
        return await super().load(partition, customer_ids, claim)


def test_a_batch_fetched_before_the_claims_seek_is_never_applied() -> None:
    """The trace of issue 11: partition 1 is assigned; while its claim awaits, the consumer fetches from the
    group's committed offset (past what Redis holds); the claim then seeks back, but a batch fetched before
    that seek reaches the new owner. It must be refused, and every event applied exactly once."""
    p0 = log_of(0, range(0, 60), customers=60)  # a new customer per event: each batch loads from the store
    p1 = log_of(1, range(0, 40))

    async def scenario() -> GatedStore:
        store = GatedStore(gated=-1, opens_at=2)
        previous = Worker(settings(), Definitions.default(), store, None, None)
        await previous.own(1)
        await previous.process(1, p1[:10])  # Redis holds partition 1 up to offset 9
        store.gated = 1
        consumer = LogConsumer({0: p0, 1: p1}, committed={1: 10})  # Kafka's commit: lag only
        worker = Worker(settings(), Definitions.default(), store, None, consumer)
        listener = worker.listener()
        tps = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
        consumer.assign(tps)

        async def first_fetch_after_the_claim_started(n: int) -> None:
            if n == 1:
                await store.claim_waiting.wait()

        consumer.before_fetch = first_fetch_after_the_claim_started
        rebalance = asyncio.create_task(listener.on_partitions_assigned(tps))
        await asyncio.gather(worker.run(), stop_when(worker, store, {0: 59, 1: 39}), rebalance)
        return store

    store = asyncio.run(scenario())
    assert stored_customers(store, 1) == expected_customers(p1)
    assert stored_customers(store, 0) == expected_customers(p0)


def test_a_batch_that_does_not_start_after_the_applied_offset_is_refused_and_fetched_again() -> None:
    log = log_of(0, range(0, 30))

    async def scenario() -> tuple[InMemoryStateStore, LogConsumer, Worker]:
        store = InMemoryStateStore()
        consumer = LogConsumer({0: log})
        worker = Worker(settings(), Definitions.default(), store, None, consumer)
        consumer.assign([TopicPartition(TOPIC, 0)])
        await worker.listener().on_partitions_assigned([TopicPartition(TOPIC, 0)])
        await worker.process(0, log[:10])
        await worker.process(0, log[20:30])  # 10..19 were never applied: refuse, seek back to 10
        assert store._p(0).offset == 9
        assert consumer.positions[0] == 10
        await asyncio.gather(worker.run(), stop_when(worker, store, {0: 29}))
        return store, consumer, worker

    store, _, worker = asyncio.run(scenario())
    assert stored_customers(store, 0) == expected_customers(log)
    assert worker.metrics.retries["out of order batch"] == 1


def test_offsets_without_records_are_accepted_once_fetched_again() -> None:
    """Transaction markers and compaction leave offsets with no record: not a reason to stall."""
    log = log_of(0, [*range(3, 10), *range(12, 20), *range(25, 31)])  # retention removed 0..2

    async def scenario() -> tuple[InMemoryStateStore, Worker]:
        store = InMemoryStateStore()
        consumer = LogConsumer({0: log})
        consumer.per_fetch = 7  # batches end right before each gap
        worker = Worker(settings(), Definitions.default(), store, None, consumer)
        consumer.assign([TopicPartition(TOPIC, 0)])
        await worker.listener().on_partitions_assigned([TopicPartition(TOPIC, 0)])
        await asyncio.gather(worker.run(), stop_when(worker, store, {0: 30}))
        return store, worker

    store, worker = asyncio.run(scenario())
    assert stored_customers(store, 0) == expected_customers(log)
    assert worker.metrics.retries["out of order batch"] == 2  # one more fetch for each gap a batch starts at


def test_a_newly_assigned_partition_is_paused_until_claimed() -> None:
    async def scenario() -> list[bool]:
        store = GatedStore(gated=0, opens_at=-1)
        consumer = LogConsumer({0: log_of(0, range(5))})
        worker = Worker(settings(), Definitions.default(), store, None, consumer)
        tp = TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        task = asyncio.create_task(worker.listener().on_partitions_assigned([tp]))
        await store.claim_waiting.wait()
        seen = [tp in consumer.paused]
        store.gate.set()
        await task
        return [*seen, tp in consumer.paused]

    assert asyncio.run(scenario()) == [True, False]


class RestorableStore(InMemoryStateStore):
    """Redis restored from a snapshot: `restore()` puts back the partitions as they were at `snapshot()`."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: object = None
        self.after_commit: Callable[[int | None], None] | None = None

    def snapshot(self) -> None:
        self.saved = copy.deepcopy(self._partitions)

    def restore(self) -> None:
        self._partitions = copy.deepcopy(self.saved)  # type: ignore[arg-type]

    async def commit(
        self, claim: Claim, offset: int | None, watermark_us: int | None, writes: Sequence[CustomerWrite]
    ) -> None:
        await super().commit(claim, offset, watermark_us, writes)
        if self.after_commit is not None:
            self.after_commit(offset)


def _rewind_scenario(snapshot_before_claim: bool) -> tuple[RestorableStore, Worker, list[Record]]:
    log = log_of(0, range(0, 50))

    async def scenario() -> tuple[RestorableStore, Worker]:
        store = RestorableStore()
        if snapshot_before_claim:  # a backup from before this worker claimed the partition: lower fence
            previous = Worker(settings(), Definitions.default(), store, None, None)
            await previous.own(0)
            await previous.process(0, log[:10])
            store.snapshot()
        consumer = LogConsumer({0: log})
        worker = Worker(settings(), Definitions.default(), store, None, consumer)

        def on_commit(offset: int | None) -> None:
            if offset == 9 and not snapshot_before_claim:
                store.snapshot()  # under this worker's own claim: same fence, fewer commits
            if offset == 29 and store.after_commit is not None:
                store.after_commit = None
                store.restore()  # Redis lost every write after the snapshot

        store.after_commit = on_commit
        tp = TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        await worker.listener().on_partitions_assigned([tp])
        await asyncio.gather(worker.run(), stop_when(worker, store, {0: 49}))
        return store, worker

    store, worker = asyncio.run(scenario())
    return store, worker, log


def test_a_redis_restored_under_our_own_claim_is_claimed_again_and_caught_up() -> None:
    store, worker, log = _rewind_scenario(snapshot_before_claim=False)
    assert stored_customers(store, 0) == expected_customers(log)
    assert worker.metrics.retries["rewound"] == 1


def test_a_redis_restored_from_before_our_claim_is_claimed_again_and_caught_up() -> None:
    store, worker, log = _rewind_scenario(snapshot_before_claim=True)
    assert stored_customers(store, 0) == expected_customers(log)
    assert worker.metrics.retries["rewound"] == 1


def test_a_partition_added_to_the_topic_stops_the_worker_before_any_of_it_is_applied() -> None:
    """Partitions added to a topic in use split customers' events over two partitions (and two states): the
    worker must refuse the new one, never apply it, and stop with an error that says how to rebuild."""
    p0, p2 = log_of(0, range(0, 20)), log_of(2, range(0, 20))

    async def scenario() -> tuple[InMemoryStateStore, LogConsumer, str]:
        store = InMemoryStateStore()
        consumer = LogConsumer({0: p0, 1: [], 2: p2, 3: []})  # the topic went from 2 to 4 partitions
        worker = Worker(
            settings().model_copy(update={"topic_partitions": 2}),
            Definitions.default(),
            store,
            None,
            consumer,
        )
        tps = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 2)]
        consumer.assign(tps)
        await worker.listener().on_partitions_assigned(tps)
        with pytest.raises(PartitionCountChanged) as refused:
            await asyncio.wait_for(worker.run(), 10)
        return store, consumer, str(refused.value)

    store, consumer, message = asyncio.run(scenario())
    assert 2 not in store._partitions and TopicPartition(TOPIC, 2) in consumer.paused
    assert "partition 2 of topic" in message and "SEGSTREAM_TOPIC_PARTITIONS=4" in message
