"""Segment sizes over time (`/grids/{grid}/sizes`) and a period's KPIs (`/grids/{grid}/kpis`) are today's
counts (`k:<grid>`) less the moves since (`t:<grid>:<week>`, weeks listed in `w`): both must be read from one
commit's state of each partition. They were read in separate round trips, so a worker commit between them
gave sizes no state ever had: a segment of -1 customers on a past day, a customer counted in `active` at the
end of a day before it was ever active. Each answer is checked against the answers before and after the
commit; the commit is forced after the answer's n-th Redis round trip (no timing)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from segmentation import Definitions
from streams.read import SegmentReader
from streams.read.dashboard.aggregates import segment_sizes
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.partitioning import partition_for
from streams.store.redis_store import RedisStateStore
from streams.worker.batch import Record
from streams.worker.loop import Worker
from tests.integration.test_worker_history import purchase
from tests.services import Services

pytestmark = pytest.mark.cluster  # make test runs these on a Redis Cluster too

T0 = datetime(2026, 3, 2, tzinfo=UTC)
C = "c-1"
FIRST = [Record("events", 0, 0, C.encode(), purchase("p-1", C, T0))]  # none -> new on T0
# 40 days on: new -> active at T0 + 30 days (a later ISO week), then the purchase
SECOND = [Record("events", 0, 1, C.encode(), purchase("p-2", C, T0 + timedelta(days=40)))]


def _settings(services: Services, prefix: str) -> Settings:
    return Settings(
        redis_url=services.redis_url, key_prefix=prefix.rstrip(":"), namespace="main",
        events_topic="events", topic_partitions=2, mode="replay",
    )  # fmt: skip


Answer = Callable[[SegmentReader], Awaitable[Any]]


def _sizes(reader: SegmentReader) -> Awaitable[Any]:
    return segment_sizes(reader, "lifecycle", None, None)


async def _kpis(reader: SegmentReader) -> Any:
    got = await reader.grid_kpis("lifecycle", T0.date(), date(2026, 3, 31))
    return {s: (k.customers_at_start, k.customers_at_end) for s, k in got.segments.items()}


def _commit_after(reader: SegmentReader, trips: int, commit: Callable[[], Awaitable[None]]) -> None:
    """The worker commits once the reader's `trips`-th pipeline has answered."""
    client: Any = reader.client
    make = client.pipeline
    done = 0

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make(*args, **kwargs)
        execute = pipe.execute

        async def executed(*a: Any, **k: Any) -> Any:
            nonlocal done
            reply = await execute(*a, **k)
            done += 1
            if done == trips:
                await commit()
            return reply

        pipe.execute = executed
        return pipe

    client.pipeline = pipeline


def _run(services: Services, prefix: str, answer: Answer, trips: int) -> tuple[Any, Any, Any]:
    settings = _settings(services, prefix)

    async def body() -> tuple[Any, Any, Any]:
        client = async_client(settings.redis_url)
        store = RedisStateStore(client, KeySpace(settings.key_prefix, "main", "events"))
        worker = Worker(settings, Definitions.default(), store, None, None)
        partition = partition_for(C, settings.topic_partitions)  # the other partition stays empty
        await worker.own(partition)
        first = [Record(r.topic, partition, r.offset, r.key, r.value) for r in FIRST]
        second = [Record(r.topic, partition, r.offset, r.key, r.value) for r in SECOND]
        readers = [SegmentReader(async_client(settings.redis_url), settings) for _ in range(3)]
        try:
            await worker.process(partition, first)
            before = await answer(readers[0])
            _commit_after(readers[1], trips, lambda: worker.process(partition, second))
            torn = await answer(readers[1])
            after = await answer(readers[2])
            return before, torn, after
        finally:
            for reader in readers:
                await reader.aclose()
            await client.aclose()

    return asyncio.run(body())


@pytest.mark.parametrize("trips", [1, 2])
def test_sizes_over_time_are_of_one_state_while_a_worker_commits(
    services: Services, redis_prefix: str, trips: int
) -> None:
    before, torn, after = _run(services, redis_prefix, _sizes, trips)
    assert before != after
    # observed before the fix (trips=1): days up to 2026-04-01, `new` 2 and `active` -1 on 2026-03-31
    assert torn in (before, after), (torn.sizes, before.sizes, after.sizes)


@pytest.mark.parametrize("trips", [1, 2])
def test_period_kpis_are_of_one_state_while_a_worker_commits(
    services: Services, redis_prefix: str, trips: int
) -> None:
    before, torn, after = _run(services, redis_prefix, _kpis, trips)
    assert before["new"] == (0, 1) and after["new"] == (0, 1)
    # observed before the fix (trips=1): `new` (0, 0) and `active` (0, 1) at the end of March
    assert torn in (before, after), (torn, before, after)
