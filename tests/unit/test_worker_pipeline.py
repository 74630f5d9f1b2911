"""The worker prepares batch N+1 while N is published and committed: N's failure or fencing must take N+1
down with it, never let N+1 be committed on its own (which would skip N's events)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import TopicPartition

from segmentation import Definitions
from streams.settings import Settings
from streams.store.port import Claim, CustomerWrite, InMemoryStateStore
from streams.topics.deadletter import DeadLetter
from streams.worker.batch import Record
from streams.worker.loop import Worker
from tests.unit.seg_helpers import home_ids

T0 = datetime(2026, 1, 5, tzinfo=UTC)
CUSTOMERS = home_ids("c", 0, 3)  # in partition 0, where their records are


def records(first: int, count: int) -> list[Record]:
    out = []
    for offset in range(first, first + count):
        body = {
            "event_id": f"e{offset}",
            "type": "purchase",
            "customer_id": CUSTOMERS[offset % 3],
            "occurred_at": (T0 + timedelta(hours=offset)).isoformat(),
            "schema_version": 1,
            "order_id": f"o{offset}",
            "amount": "10.00",
            "currency": "EUR",
            "channel": "web",
        }
        key = str(body["customer_id"]).encode()
        out.append(Record("events", 0, offset, key, orjson.dumps(body)))
    return out


class FailingStore(InMemoryStateStore):
    """Refuses (or fences) the commit of one offset; every other commit behaves."""

    def __init__(self, bad_offset: int, fence: bool) -> None:
        super().__init__()
        self.bad_offset, self.fence = bad_offset, fence
        self.committed: list[int | None] = []

    async def commit(
        self, claim: Claim, offset: int | None, watermark_us: int | None, writes: Sequence[CustomerWrite]
    ) -> None:
        if offset == self.bad_offset:
            if self.fence:
                await self.claim(claim.partition)  # another owner took the partition meanwhile
            else:
                raise RuntimeError("the commit of batch N failed")
        await super().commit(claim, offset, watermark_us, writes)
        self.committed.append(offset)


async def _two_batches(store: FailingStore) -> Worker:
    worker = Worker(Settings(), Definitions.default(), store, None, None)
    await worker.own(0)
    await worker.submit(0, records(0, 5))  # batch N: offsets 0..4, steps 4-7 now in flight
    await worker.submit(0, records(5, 5))  # batch N+1: prepared on N's states
    await worker.drain()
    return worker


def test_a_failed_batch_takes_the_next_one_down_with_it() -> None:
    store = FailingStore(bad_offset=4, fence=False)
    with pytest.raises(RuntimeError, match="batch N failed"):
        asyncio.run(_two_batches(store))
    assert store.committed == []
    assert asyncio.run(store.read_meta(0)) == (None, None)


def test_a_fenced_batch_drops_the_next_one() -> None:
    store = FailingStore(bad_offset=4, fence=True)
    worker = asyncio.run(_two_batches(store))
    assert store.committed == []
    assert 0 not in worker.owned
    assert asyncio.run(store.load(0, CUSTOMERS)) == {}


def test_batches_in_flight_commit_in_log_order_and_count_every_event_once() -> None:
    store = FailingStore(bad_offset=-1, fence=False)
    asyncio.run(_two_batches(store))
    assert store.committed == [4, 9]
    rows = asyncio.run(store.load(0, CUSTOMERS))
    assert sum(int(row["orders"]) for row in rows.values()) == 10


class OffsetLog:
    """The consumer's side of steps 6-7: Kafka offset commits, and the high watermark for the lag."""

    def __init__(self) -> None:
        self.commits: list[int] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.extend(offsets.values())

    def highwater(self, tp: TopicPartition) -> int:
        return 100

    async def position(self, tp: TopicPartition) -> int:
        return 20  # after the records handed over: 0-19

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(Settings().events_topic, 0)}


class CountingStore(InMemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.published: list[dict[str, str | int | float]] = []

    async def publish_metrics(self, fields: Mapping[str, str | int | float]) -> None:
        self.published.append(dict(fields))


def test_kafka_offsets_and_metrics_are_reported_at_most_every_interval_and_on_drain() -> None:
    """Informational reports must not cost a broker request per batch, yet the last offset must get out."""
    store, log = CountingStore(), OffsetLog()

    async def batches() -> None:
        worker = Worker(Settings(), Definitions.default(), store, None, log)
        await worker.own(0)
        for first in range(0, 20, 5):
            await worker.process(0, records(first, 5))
        assert log.commits == [5]  # the first batch reports, the next three are within the interval
        assert len(store.published) == 1
        await worker.drain()

    asyncio.run(batches())
    assert log.commits == [5, 20]
    assert store.published[-1]["lag:0"] == 100 - 19 - 1
    assert asyncio.run(store.read_meta(0))[0] == 19


def test_the_state_cache_is_bounded_per_process_whatever_the_partitions_owned() -> None:
    """SEGSTREAM_STATE_CACHE_SIZE bounds the worker's memory: four partitions share it, not each one."""

    def customers(partition: int, count: int) -> list[Record]:
        out = []
        ids = home_ids(f"p{partition}-c", partition, count)
        for n, record in enumerate(records(0, count)):
            body = orjson.loads(record.value or b"")
            body["customer_id"], body["event_id"] = ids[n], f"p{partition}-e{n}"
            out.append(Record("events", partition, n, body["customer_id"].encode(), orjson.dumps(body)))
        return out

    async def run() -> Worker:
        worker = Worker(
            Settings(state_cache_size=12), Definitions.default(), InMemoryStateStore(), None, None
        )
        for p in range(4):
            await worker.own(p)
        for p in range(4):
            await worker.process(p, customers(p, 10))
        await worker.drain()
        return worker

    worker = asyncio.run(run())
    assert [len(owned.cache) for owned in worker.owned.values()] == [3, 3, 3, 3]


def test_a_record_outside_its_customers_partition_is_a_dead_letter_never_a_second_state() -> None:
    """A producer with another partitioner (librdkafka's default), or partitions added to the topic, puts a
    customer's record in a partition whose keys readers never look at: dead-lettered, with the reason."""
    elsewhere = home_ids("c", 1, 1)[0]  # belongs to partition 1 of 4
    record = records(0, 1)[0]
    body = orjson.loads(record.value or b"")
    body["customer_id"] = elsewhere
    stray = Record("events", 0, 1, elsewhere.encode(), orjson.dumps(body))
    dead: list[DeadLetter] = []

    async def sink(letters: list[DeadLetter]) -> None:
        dead.extend(letters)

    async def run() -> InMemoryStateStore:
        store = InMemoryStateStore()
        worker = Worker(Settings(), Definitions.default(), store, None, None, dead_letter_sink=sink)
        await worker.own(0)
        await worker.process(0, [record, stray])
        return store

    store = asyncio.run(run())
    assert set(store._p(0).customers) == {CUSTOMERS[0]}
    assert [(d.offset, type(d.error).__name__) for d in dead] == [(1, "WrongKey")]
    assert "belongs to partition 1 of 4" in str(dead[0].error) and "murmur2" in str(dead[0].error)
