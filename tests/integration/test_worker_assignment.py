"""A worker given many partitions at once (the only worker of a group, or after a rebalance) starts consuming
all of them together: the group's pause after a join or a leave must not grow with partitions per worker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from streams.bootstrap import ensure_topics, keyspace
from streams.store.connection import sync_client
from tests.integration.worker_harness import make_settings, run_worker_until
from tests.services import Services


@pytest.mark.timeout(120)
def test_a_worker_takes_its_whole_assignment_without_waiting_a_fetch_per_partition(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    # Kafka answers the requests of one connection in order, so a question asked while a long-poll fetch
    # is pending waits for that fetch (up to kafka_fetch_max_wait_ms). Taking partitions one by one with
    # a question each (their end offsets) once the first was resumed took ~15 x 4 s here: 60 s before the
    # last partition was consumed. Asked once for the whole assignment, every claim is in within seconds.
    settings = make_settings(
        services, topic_name, redis_prefix, topic_partitions=16, kafka_fetch_max_wait_ms=4000
    )
    keys = keyspace(settings)
    client = sync_client(settings.redis_url)

    def claimed() -> bool:
        return all(client.hexists(keys.partition_meta(p), "fence") for p in range(16))

    async def run() -> None:
        await ensure_topics(settings)
        await run_worker_until(settings, claimed, timeout=20)

    try:
        asyncio.run(run())
    finally:
        client.close()
