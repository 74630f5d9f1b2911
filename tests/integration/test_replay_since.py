"""`replay kafka:TOPIC --since T`: a partition whose records are all before T is stored as applied up to them,
like the partitions replayed, so a worker continuing the namespace does not apply them (found in review, 6
December 2026: it had no offset, and a worker would have started it from offset 0)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from streams.bootstrap import ensure_topics
from streams.replay.sources import KafkaSource
from streams.store.connection import sync_client
from streams.store.keys import KeySpace
from streams.store.partitioning import partition_for
from tests.integration.replay_helpers import replay_file
from tests.integration.worker_harness import make_settings, stored_customers
from tests.services import Services

SINCE = datetime(2026, 6, 1, tzinfo=UTC)


def _customer_in(partition: int, partitions: int, tag: str) -> str:
    return next(c for n in range(1000) if partition_for(c := f"{tag}{n}", partitions) == partition)


def test_a_partition_with_records_only_before_since_is_stored_as_applied(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    old, new = _customer_in(0, 2, "old"), _customer_in(1, 2, "new")
    before, after = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
    sent = [(0, old, before, f"a{n}") for n in range(3)]  # partition 0: only before --since
    sent += [(1, new, before, "b0"), (1, new, after, "b1")]

    async def produce() -> None:
        await ensure_topics(settings)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for partition, customer, at, event_id in sent:
                body: dict[str, object] = {"event_id": event_id, "type": "web_visit", "customer_id": customer}
                body |= {"occurred_at": at.isoformat(), "schema_version": 1}
                await producer.send_and_wait(
                    settings.events_topic,
                    orjson.dumps(body),
                    key=customer.encode(),
                    partition=partition,
                    timestamp_ms=int(at.timestamp() * 1000),
                )
        finally:
            await producer.stop()

    asyncio.run(produce())
    source = KafkaSource(settings.events_topic, SINCE, settings)
    summary = asyncio.run(replay_file(settings, tmp_path / "unused", "since", tmp_path, source=source))
    assert summary.events == 1  # b1 only
    keys = KeySpace(settings.key_prefix, "since", settings.events_topic)
    client = sync_client(settings.redis_url, decode_responses=True)
    try:
        offsets = [client.hget(keys.partition_meta(p), "offset") for p in (0, 1)]
    finally:
        client.close()
    assert offsets == ["2", "1"]  # partition 0 as applied up to its last record before --since
    ns = settings.model_copy(update={"namespace": "since"})
    assert set(stored_customers(ns)) == {new}
