"""The reads of one commit's state of each partition (`snapshot.week_snapshot`: a period's KPIs, segment sizes
over time, day flows) while the partition's slot is half migrated to another primary.

Such a read is one MULTI/EXEC over the partition's keys. Mid-migration Redis cannot run it: the source
answers ASK for a key already moved (EXECABORT), the importing node TRYAGAIN for a key not there yet (one
that does not exist is on neither), until the last key has moved. redis-py raised that AskError /
MovedError (a ResponseError) to the caller: the API answered 500 "internal error" and logged a traceback
for a bug, the CLI exited with "unexpected AskError". A migration is an outage of that slot's reads, like
one that begins during a partition walk: SlotMigrating (the API's 503 with Retry-After, exit code 3: run it
again). Once the slot has moved, the same read answers as before the migration."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from typing import Any

import pytest
import redis.exceptions
from redis.crc import key_slot

from segmentation import Definitions
from streams.errors import failure
from streams.read import SegmentReader
from streams.read.dashboard.aggregates import segment_sizes
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.partitioning import partition_for
from streams.store.redis_store import RedisStateStore
from streams.store.slot_walk import SlotMigrating
from streams.worker.batch import Record
from streams.worker.loop import Worker
from tests.integration.slot_migration import Primary, command, move_slot, owner, primaries
from tests.integration.test_counts_torn_read import FIRST, SECOND, T0, C
from tests.services import Services, wants_cluster

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not wants_cluster(), reason="moves Redis Cluster slots: SEGSTREAM_TEST_REDIS=cluster"),
]
Answer = Callable[[SegmentReader], Awaitable[Any]]


async def _kpis(reader: SegmentReader) -> Any:
    got = await reader.grid_kpis("lifecycle", T0.date(), date(2026, 3, 31))
    return {s: (k.customers_at_start, k.customers_at_end) for s, k in got.segments.items()}


async def _sizes(reader: SegmentReader) -> Any:
    return (await segment_sizes(reader, "lifecycle", None, None)).sizes


async def _flows(reader: SegmentReader) -> Any:
    return await reader.segment_flows("lifecycle")


def _settings(services: Services, prefix: str) -> Settings:
    return Settings(
        redis_url=services.redis_url, key_prefix=prefix.rstrip(":"), namespace="main",
        events_topic="events", topic_partitions=2, mode="replay",
    )  # fmt: skip


@pytest.fixture
def filled(services: Services, redis_prefix: str) -> Iterator[tuple[Settings, int, list[Primary]]]:
    """A partition with two commits of one customer; its slot put back on its owner after the test."""
    settings = _settings(services, redis_prefix)
    keys = KeySpace(settings.key_prefix, "main", "events")
    partition = partition_for(C, settings.topic_partitions)

    async def fill() -> None:
        client = async_client(settings.redis_url)
        worker = Worker(settings, Definitions.default(), RedisStateStore(client, keys), None, None)
        try:
            await worker.own(partition)
            for batch in (FIRST, SECOND):
                await worker.process(
                    partition, [Record(r.topic, partition, r.offset, r.key, r.value) for r in batch]
                )
        finally:
            await client.aclose()

    asyncio.run(fill())
    host, port = services.redis_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    nodes = primaries(host, int(port))
    slot = key_slot(keys.partition_meta(partition).encode())
    source = owner(nodes, slot)
    yield settings, slot, nodes
    move_slot(nodes, slot, nodes[(nodes.index(source) + 1) % len(nodes)])  # ends a half-begun migration
    move_slot(nodes, slot, source)
    assert owner(nodes, slot) == source


def _half_migrate(nodes: list[Primary], slot: int, prefix: str, kinds: tuple[str, ...]) -> Primary:
    """The slot MIGRATING to the next primary with the test's keys of `kinds` moved; returns the target."""
    source = owner(nodes, slot)
    target = nodes[(nodes.index(source) + 1) % len(nodes)]
    src, dst = source.client(), target.client()
    try:
        listed = [
            k if isinstance(k, bytes) else k.encode()
            for k in command(src, "CLUSTER GETKEYSINSLOT", slot, 5000)
        ]
        mine = [k.decode() for k in listed if k.startswith(prefix.encode())]
        moved = [k for k in mine if k.split("}:", 1)[1].split(":", 1)[0] in kinds]
        assert moved and len(moved) < len(mine)
        command(dst, "CLUSTER SETSLOT", slot, "IMPORTING", source.node_id)
        command(src, "CLUSTER SETSLOT", slot, "MIGRATING", target.node_id)
        command(src, "MIGRATE", target.host, target.port, "", 0, 10_000, "KEYS", *moved)
    finally:
        src.close()
        dst.close()
    return target


def _answer(settings: Settings, answer: Answer) -> Any:
    async def run() -> Any:
        reader = SegmentReader(async_client(settings.redis_url), settings)
        try:
            return await answer(reader)
        finally:
            await reader.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("answer", [_kpis, _sizes, _flows], ids=["kpis", "sizes", "flows"])
@pytest.mark.parametrize("kinds", [("k",), ("w", "meta")], ids=["counts-moved", "weeks-and-meta-moved"])
def test_a_snapshot_read_of_a_migrating_slot_is_a_transient_refusal_not_a_bug(
    filled: tuple[Settings, int, list[Primary]], answer: Answer, kinds: tuple[str, ...]
) -> None:
    settings, slot, nodes = filled
    before = _answer(settings, answer)
    target = _half_migrate(nodes, slot, settings.key_prefix, kinds)
    with pytest.raises(SlotMigrating, match=f"slot {slot}") as raised:
        _answer(settings, answer)
    # what the API answers 503 with Retry-After, and the CLI's one line and exit code 3
    assert isinstance(raised.value, redis.exceptions.ConnectionError)
    code, line = failure(raised.value, settings)
    assert code == 3 and "run it again" in line, line
    move_slot(nodes, slot, target)  # the migration ends: the same read answers as before it
    assert _answer(settings, answer) == before
