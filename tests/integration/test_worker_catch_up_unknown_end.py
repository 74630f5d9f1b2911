"""Live mode sweeps a partition taken with a backlog by event time until the backlog is applied; when Kafka
did not say the partition's end at the claim (a timeout, an error), the partition is not caught up until it
does (found in review, 6 December 2026: it counted as caught up at once, and the first sweep aged the
backlog's customer by the wall clock, publishing at_risk and back before its later purchase was applied)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError

from segmentation import Definitions
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.history_format import FIELD, decode
from streams.store.keys import KeySpace
from streams.store.redis_store import RedisStateStore
from streams.worker.batch import Record
from streams.worker.loop import Worker
from tests.integration.test_worker_history import purchase
from tests.services import Services
from tests.unit.seg_helpers import home_ids
from tests.unit.test_worker_rebalance import TOPIC, LogConsumer

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class NoEnds(LogConsumer):
    """Kafka does not answer the end offsets; the fetches' high watermark is known once `known`."""

    known = False

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        raise KafkaTimeoutError("end offsets: no answer (forced)")

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self.logs[tp.partition]) if self.known else None


@pytest.mark.parametrize("ends_known", [True, False])
def test_a_backlog_is_not_aged_by_the_wall_clock_before_it_is_applied(
    services: Services, redis_prefix: str, ends_known: bool
) -> None:
    cid = home_ids("cu", 0, 1, 4)[0]
    lines = [purchase("b0", cid, NOW - timedelta(days=100)), purchase("b1", cid, NOW - timedelta(days=50))]
    log = [Record(TOPIC, 0, n, cid.encode(), line) for n, line in enumerate(lines)]

    async def body() -> tuple[list[tuple[str, str | None]], object]:
        r = async_client(services.redis_url)
        store = RedisStateStore(r, KeySpace(redis_prefix.rstrip(":"), "ns", TOPIC))
        consumer = (LogConsumer if ends_known else NoEnds)({0: log})
        tp = TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        settings = Settings(mode="live", batch_max_ms=1, sweep_interval_ms=10_000)
        worker = Worker(settings, Definitions.default(), store, None, consumer, wall_clock=lambda: NOW)
        try:
            await worker.listener().on_partitions_assigned([tp])
            await worker.process(0, log[0:1])  # the first poll brought the backlog's first record only
            await worker.sweep(force=True)  # the poll loop's sweep after it
            if isinstance(consumer, NoEnds):
                consumer.known = True  # a fetch told the high watermark
            await worker.process(0, log[1:2])
            await worker.drain()
            await worker.sweep(force=True)  # caught up now: by the wall clock
            row = (await store.load(0, [cid]))[cid]
            entries, _ = decode(row[FIELD])
            moves = [(e.grid, e.to_segment) for e in entries]
            return [m for m in moves if m[0] == "lifecycle"], await r.hget(
                store.keys.customer(0, cid), "lifecycle"
            )
        finally:
            await r.aclose()

    lifecycle, final = asyncio.run(body())
    # as a continuous run: new (first purchase) -> active; never at_risk (the second purchase is 50 days old)
    assert [segment for _, segment in lifecycle] == ["new", "active"]
    assert final == b"active"
