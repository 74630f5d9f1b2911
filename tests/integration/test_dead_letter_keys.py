"""Dead letters keep the original record's key, whatever its bytes (README "Events in": a record not keyed by
its customer id is a dead letter)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.bootstrap import ensure_topics
from streams.store.partitioning import partition_for
from tests.integration.test_worker_history import T0, purchase
from tests.integration.worker_harness import applied_offsets, make_settings, read_topic, run_worker_until
from tests.services import Services


def test_a_record_keyed_by_bytes_that_are_no_utf8_is_a_dead_letter_with_its_key(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """Before: the dead letter's partition on the dead-letter topic was computed by decoding its key as UTF-8;
    a producer keying by binary (a raw UUID, a hash) made the publish raise UnicodeDecodeError, the worker
    stopped before its commit, and every restart stopped on the same record: the partition never moved."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    home = partition_for("cust", 2)
    binary_key = b"\xff\xfe\x00\x9c"
    records: list[tuple[bytes | None, bytes]] = [
        (binary_key, purchase("e1", "cust", T0)),  # a valid event under a binary key: WrongKey
        (binary_key, b'{"not": "an event"}'),  # and an invalid one
        (b"cust", purchase("e2", "cust", T0)),  # the stream goes on
    ]

    async def scenario() -> list[Any]:
        await ensure_topics(settings)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for key, value in records:
                await (await producer.send(settings.events_topic, value, key=key, partition=home))
        finally:
            await producer.stop()
        await run_worker_until(settings, lambda: applied_offsets(settings)[home] == len(records) - 1)
        return await read_topic(settings, settings.dlq_topic, 2)

    dead = sorted(asyncio.run(scenario()), key=lambda r: int(dict(r.headers)["__connect.errors.offset"]))
    assert [(r.key, r.value) for r in dead] == [(k, v) for k, v in records[:2]]
    assert [dict(r.headers)["__connect.errors.offset"] for r in dead] == [b"0", b"1"]
    assert [dict(r.headers)["__connect.errors.partition"] for r in dead] == [str(home).encode()] * 2
