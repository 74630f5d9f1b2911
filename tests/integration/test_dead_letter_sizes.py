"""Dead letters on a dead-letter topic whose `max.message.bytes` is below the broker's: the README says to
keep SEGSTREAM_DLQ_MAX_VALUE_BYTES below it (minus ~4 KB), so every dead letter of a batch must reach the
topic. Real Kafka, real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.bootstrap import ensure_topics
from tests.integration.worker_harness import (
    applied_offsets,
    make_settings,
    read_topic,
    run_worker_until,
    stored_customers,
)
from tests.services import Services

TOPIC_MAX = 300_000  # the dead-letter topic's max.message.bytes
BODY = {
    "type": "web_visit",
    "customer_id": "c1",
    "occurred_at": "2026-03-01T10:00:00+00:00",
    "schema_version": 1,
}


def test_dead_letters_of_one_batch_fit_a_smaller_dead_letter_topic_together(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """Three records of 100 KB (over the event size limit: dead letters), each far below the value limit and
    the topic's, went to the broker in one record batch of ~300 KB, which the topic refused as too large
    (not retriable): the worker stopped, and stopped again on every restart (the partition stalled)."""
    settings = make_settings(
        services, topic_name, redis_prefix, topic_partitions=1, dlq_max_value_bytes=TOPIC_MAX - 50_000
    )
    big = [orjson.dumps({**BODY, "event_id": f"big{n}", "page": "/" + "x" * 100_000}) for n in range(3)]
    after = orjson.dumps({**BODY, "event_id": "after", "page": "/home"})

    async def feed() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            config = {"max.message.bytes": str(TOPIC_MAX)}
            await admin.create_topics([NewTopic(settings.dlq_topic, 1, 1, topic_configs=config)])
        finally:
            await admin.close()
        await ensure_topics(settings)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            batch = [await producer.send(settings.events_topic, v, key=b"c1") for v in [*big, after]]
            await asyncio.gather(*batch)
        finally:
            await producer.stop()

    asyncio.run(feed())
    asyncio.run(run_worker_until(settings, lambda: applied_offsets(settings)[0] == 3, timeout=60))
    dead = asyncio.run(read_topic(settings, settings.dlq_topic, expect_at_least=3))
    assert sorted(int(dict(d.headers)["__connect.errors.offset"]) for d in dead) == [0, 1, 2]
    assert sorted(d.value for d in dead) == sorted(big)
    assert "c1" in stored_customers(settings)
