"""Run the real worker in-process against the real broker and Redis, and read what it published."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from segmentation.state_mapping import state_to_mapping, view_of
from streams.bootstrap import ensure_topics, keyspace, worker_runtime
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.stored_state import readers_view, stored_state


def make_settings(
    services: Any, topic_name: Callable[[str], str], redis_prefix: str, **over: Any
) -> Settings:
    base: dict[str, Any] = {
        "kafka_bootstrap": services.kafka_bootstrap,
        "redis_url": services.redis_url,
        "events_topic": topic_name("events"),
        "transitions_topic": topic_name("transitions"),
        "dlq_topic": topic_name("dlq"),
        "group_id": topic_name("group"),
        "key_prefix": redis_prefix.rstrip(":"),
        "topic_partitions": 2,
        "batch_max_ms": 50,
        "sweep_interval_ms": 100,
        "mode": "replay",
    }
    base.update(over)
    return Settings(**base)


async def produce(
    settings: Settings,
    lines: Sequence[bytes],
    key_of: Callable[[bytes], bytes | None],
    timestamps: Sequence[int] | None = None,
) -> None:
    """`timestamps`: each record's time (ms since the epoch; default: the producer's clock)."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        **settings.kafka_security(),
    )
    await producer.start()
    try:
        times = timestamps if timestamps is not None else [None] * len(lines)
        futures = [
            await producer.send(settings.events_topic, line, key=key_of(line), timestamp_ms=ms)
            for line, ms in zip(lines, times, strict=True)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def customer_key(line: bytes) -> bytes | None:
    try:
        return str(orjson.loads(line)["customer_id"]).encode()
    except Exception:
        return None


async def run_worker_until(settings: Settings, done: Callable[[], bool], timeout: float = 60) -> None:
    """Start a worker, wait until done() (polled) or time out, then stop it gracefully."""
    async with worker_runtime(settings) as runtime:
        task = asyncio.create_task(runtime.worker.run())
        deadline = time.monotonic() + timeout
        try:
            while not done():
                if task.done():
                    task.result()
                    raise AssertionError("worker stopped by itself")
                if time.monotonic() > deadline:
                    raise AssertionError("condition not reached before timeout")
                await asyncio.sleep(0.1)
        finally:
            runtime.worker.stop()
            await asyncio.wait_for(task, 30)


async def read_topic(
    settings: Settings, topic: str, expect_at_least: int = 0, idle_s: float = 2.0
) -> list[Any]:
    """Every record of a topic from the beginning (stops after idle_s without new records)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        **settings.kafka_security(),
    )
    await consumer.start()
    records: list[Any] = []
    try:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < idle_s or len(records) < expect_at_least:
            batch = await consumer.getmany(timeout_ms=200)
            got = [m for msgs in batch.values() for m in msgs]
            if got:
                records += got
                idle_since = time.monotonic()
            if time.monotonic() - idle_since > 30:
                break
    finally:
        await consumer.stop()
    return records


def stored_customers(settings: Settings) -> dict[str, dict[str, str]]:
    """customer id -> hash, across partitions, read with SCAN."""
    keys = keyspace(settings)
    client = sync_client(
        settings.redis_url, decode_responses=True, encoding_errors="surrogateescape", **settings.redis_tls()
    )
    out: dict[str, dict[str, str]] = {}
    try:
        for partition in range(settings.topic_partitions):
            for key in client.scan_iter(match=keys.customer_pattern(partition), count=1000):
                out[str(key).rsplit(":c:", 1)[1]] = cast(dict[str, str], client.hgetall(key))
    finally:
        client.close()
    return out


def customer_views(settings: Settings) -> dict[str, dict[str, str]]:
    """customer id -> its view (`state_mapping.view_of`): the hash plus the readable fields it leaves absent
    (an audience's `not_member`, a grid with no segment as "")."""
    return {cid: view_of(row, stored_state(row, "test")) for cid, row in stored_customers(settings).items()}


def decoded(row: dict[str, str]) -> dict[str, str]:
    """Every field of a stored customer hash as readers see it (format-1 names and texts), decoded from
    its packed `state`; the readable fields the hash holds must be exactly those its state stores."""
    view = readers_view(row, "test")
    readable = {k: v for k, v in row.items() if k not in ("state", "history") and not k.startswith("_")}
    expected = state_to_mapping(stored_state(row, "test"))
    del expected["state"]
    assert readable == expected
    return view


def applied_offsets(settings: Settings) -> dict[int, int | None]:
    keys = keyspace(settings)
    client = sync_client(
        settings.redis_url, decode_responses=True, encoding_errors="surrogateescape", **settings.redis_tls()
    )
    try:
        out: dict[int, int | None] = {}
        for p in range(settings.topic_partitions):
            value = client.hget(keys.partition_meta(p), "offset")
            out[p] = None if value is None else int(value)
        return out
    finally:
        client.close()
