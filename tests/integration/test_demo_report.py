"""`make demo`'s report counts every transition on the topic, however slowly the box reads it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streams import demo
from streams.bootstrap import ensure_topics
from streams.settings import Settings
from tests.services import Services


async def _produce(settings: Settings, total: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for i in range(total):
            data = {
                "customer_id": f"c{i:04d}",
                "grid": "lifecycle",
                "from_segment": "new" if i % 2 else None,
                "to_segment": "active",
                "effective_at": "2026-01-01T00:00:00Z",
                "cause": "event",
            }
            await producer.send(settings.transitions_topic, orjson.dumps({"data": data}), partition=i % 4)
        await producer.flush()  # send() only queues: the batches go out together
    finally:
        await producer.stop()


def test_the_report_counts_every_transition_even_when_reading_takes_longer_than_3_seconds(
    services: Services, topic_name: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report read the topic for a fixed 3 s: on a topic larger than a busy box reads in 3 s (a larger
    --customers) it printed a short count. The slow read is forced: 0.2 ms per message, 40,000 messages
    (more than one fetch returns: a fetch brings up to 1 MB per partition, and the old loop only stopped
    between fetches)."""
    settings = Settings(
        kafka_bootstrap=services.kafka_bootstrap,
        events_topic=topic_name("events"),
        transitions_topic=topic_name("transitions"),
        dlq_topic=topic_name("dlq"),
        topic_partitions=4,
    )
    asyncio.run(ensure_topics(settings))
    asyncio.run(_produce(settings, 40_000))
    loads = orjson.loads

    def slow_loads(raw: Any) -> Any:
        time.sleep(0.0002)
        return loads(raw)

    monkeypatch.setattr(orjson, "loads", slow_loads)  # demo.py calls orjson.loads per message
    count, shown = asyncio.run(demo.transitions(settings, 8))
    assert count == 40_000
    assert len(shown) == 8 and all(" new -> active " in line for line in shown)
