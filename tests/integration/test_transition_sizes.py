"""Transitions on a transitions topic whose `max.message.bytes` is below the producer's 1 MiB batches: every
transition fits it by far (~1 KB), so every one must reach it, as on a topic with the broker's default.
Real Kafka, real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.bootstrap import ensure_topics
from streams.sample import generator as sample
from tests.integration.test_worker_kill import caught_up, end_offsets
from tests.integration.worker_harness import make_settings, read_topic, run_worker_until
from tests.services import Services

TOPIC_MAX = 64_000  # the transitions topic's max.message.bytes


def test_a_batch_of_transitions_fits_a_smaller_transitions_topic(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """A poll batch of 2,000 events moves hundreds of customers: their transitions went to the broker in
    record batches of up to 1 MiB, which a topic of 64 KB refused as too large (not retriable): the worker
    stopped ('unexpected MessageSizeTooLargeError', exit 1), and again at every restart (a stalled stream)."""
    settings = make_settings(
        services, topic_name, redis_prefix, topic_partitions=2, batch_max_events=2000, batch_max_ms=500
    )
    clean = settings.model_copy(
        update={"key_prefix": redis_prefix + "clean", "transitions_topic": topic_name("clean-transitions"),
                "group_id": topic_name("clean-group")}
    )  # fmt: skip
    spec = sample.SampleSpec(customers=400, days=60, seed=4)

    async def feed() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        try:
            config = {"max.message.bytes": str(TOPIC_MAX)}
            await admin.create_topics([NewTopic(settings.transitions_topic, 2, 1, topic_configs=config)])
        finally:
            await admin.close()
        await ensure_topics(settings)
        await sample.produce(spec, settings.kafka_bootstrap, settings.events_topic)

    asyncio.run(feed())
    ends = end_offsets(settings)
    asyncio.run(run_worker_until(clean, caught_up(clean, ends), timeout=180))
    asyncio.run(run_worker_until(settings, caught_up(settings, ends), timeout=180))

    async def ids(topic: str) -> list[str]:
        return [orjson.loads(r.value)["id"] for r in await read_topic(settings, topic)]

    published, reference = (
        asyncio.run(ids(settings.transitions_topic)),
        asyncio.run(ids(clean.transitions_topic)),
    )
    assert set(published) == set(reference) and len(reference) > 500
