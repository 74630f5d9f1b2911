"""A record whose header name is not UTF-8 (librdkafka and raw producers can write one; Java consumers read
it with replacement characters) is an event like any other: our contract ignores headers. aiokafka's parser
raised UnicodeDecodeError from `getmany` for it: the worker stopped at every restart, and `replay kafka:`
failed, with nothing behind that record ever applied. Real Kafka, real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

from streams.bootstrap import ensure_topics
from streams.replay.sources import KafkaSource
from streams.settings import Settings
from tests.integration.replay_helpers import replay_file
from tests.integration.worker_harness import (
    applied_offsets,
    make_settings,
    run_worker_until,
    stored_customers,
)
from tests.services import Services

T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


class _RawName(str):
    """A header name whose bytes on the wire are not UTF-8 (aiokafka's Python builder encodes names)."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"\xff\xfetrace"


def _purchase(n: int) -> bytes:
    return orjson.dumps(
        {
            "type": "purchase",
            "event_id": f"e{n}",
            "customer_id": "c1",
            "occurred_at": (T0 + timedelta(days=n)).isoformat(),
            "schema_version": 1,
            "order_id": f"o{n}",
            "amount": "10.00",
            "currency": "EUR",
            "channel": "web",
        }
    )


async def _feed(settings: Settings) -> None:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(settings.events_topic, _purchase(0), key=b"c1")
        batch = producer.create_batch()
        batch._builder = _DefaultRecordBatchBuilderPy(  # the Python builder: it calls the name's `encode`
            2, 0, is_transactional=0, producer_id=-1, producer_epoch=-1, base_sequence=0, batch_size=1 << 20
        )
        batch.append(key=b"c1", value=_purchase(1), timestamp=None, headers=[(_RawName("t"), b"v")])
        batch.close()
        await (await producer.send_batch(batch, settings.events_topic, partition=0))
        await producer.send_and_wait(settings.events_topic, _purchase(2), key=b"c1")
    finally:
        await producer.stop()


def test_a_header_name_that_is_not_utf8_stops_neither_the_worker_nor_a_kafka_replay(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1)
    asyncio.run(_feed(settings))

    asyncio.run(run_worker_until(settings, lambda: applied_offsets(settings)[0] == 2, timeout=60))
    assert stored_customers(settings)["c1"]["orders"] == "3"

    source = KafkaSource(settings.events_topic, None, settings)
    summary = asyncio.run(replay_file(settings, tmp_path / "unused", "rk", tmp_path, source=source))
    assert (summary.events, summary.dead_letters, summary.customers) == (3, 0, 1)
