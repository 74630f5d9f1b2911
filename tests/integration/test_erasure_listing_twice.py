"""A customer erased and back (a new lifetime, so a new ordinal) between two pages of one members walk, or
two chunks of one export, must not be listed twice: `SegmentReader.members_page` promises "a page never
repeats a member of an earlier page of the same walk", `export.member_rows` "each customer is listed at most
once" (docs/export.md). The erasure and the comeback are committed by the worker between two pages, forced
by pausing the walk there (no timing)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from segmentation import Definitions
from streams.read import SegmentReader
from streams.read.columns import catalogue, parse_columns
from streams.read.export import Selection, member_rows
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.redis_store import RedisStateStore
from streams.worker.batch import Record
from streams.worker.loop import Worker
from tests.integration.test_worker_history import ev, purchase
from tests.services import Services

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, tzinfo=UTC)
FIRST = ("a-1", "x-2", "b-3")  # all three `new` in lifecycle, ordinals 0, 1, 2
X = "x-2"


def _settings(services: Services, prefix: str) -> Settings:
    return Settings(
        redis_url=services.redis_url, key_prefix=prefix.rstrip(":"), namespace="main",
        events_topic="events", topic_partitions=1, mode="replay",
    )  # fmt: skip


async def _worker(settings: Settings) -> tuple[Worker, object]:
    client = async_client(settings.redis_url)
    store = RedisStateStore(client, KeySpace(settings.key_prefix, "main", "events"))
    worker = Worker(settings, Definitions.default(), store, None, None)
    await worker.own(0)
    return worker, client


def _records(lines: Sequence[bytes], customers: Sequence[str], first_offset: int) -> list[Record]:
    return [
        Record("events", 0, first_offset + n, cid.encode(), line)
        for n, (cid, line) in enumerate(zip(customers, lines, strict=True))
    ]


FEED = _records([purchase(f"{c}-o", c, T0 + timedelta(hours=n)) for n, c in enumerate(FIRST)], FIRST, 0)
# X erased, then back with a purchase after the erasure: a new customer under the same id, `new` again
ERASE_AND_BACK = _records(
    [
        ev("x-erase", "customer_erased", X, T0 + timedelta(days=1)),
        purchase("x-back", X, T0 + timedelta(days=2)),
    ],
    [X, X],
    len(FIRST),
)


def test_members_walk_lists_a_customer_erased_and_back_meanwhile_at_most_once(
    services: Services, redis_prefix: str
) -> None:
    settings = _settings(services, redis_prefix)

    async def body() -> list[str]:
        worker, client = await _worker(settings)
        reader = SegmentReader(async_client(settings.redis_url, decode_responses=True), settings)
        try:
            await worker.process(0, FEED)
            listed: list[str] = []
            page = await reader.members_page("lifecycle", "new", None, 2)  # a-1, x-2 (its first lifetime)
            listed += page.members
            await worker.process(0, ERASE_AND_BACK)  # between two pages of the walk
            while page.next_cursor is not None:
                page = await reader.members_page("lifecycle", "new", page.next_cursor, 2)
                listed += page.members
            return listed
        finally:
            await reader.aclose()
            await client.aclose()  # type: ignore[attr-defined]

    listed = asyncio.run(body())
    assert listed[:2] == ["a-1", X]
    assert listed.count(X) == 1, listed  # observed: ['a-1', 'x-2', 'b-3', 'x-2']


def test_export_lists_a_customer_erased_and_back_meanwhile_at_most_once(
    services: Services, redis_prefix: str
) -> None:
    settings = _settings(services, redis_prefix)
    columns = parse_columns("customer_id,segment:lifecycle", catalogue(["lifecycle"]), False)
    selection = Selection("lifecycle", "new", columns)

    async def body() -> list[str]:
        worker, client = await _worker(settings)
        reader = async_client(settings.redis_url)
        keys = KeySpace(settings.key_prefix, "main", "events")
        try:
            await worker.process(0, FEED)
            listed: list[str] = []
            chunks = member_rows(reader, keys, [0], selection, chunk=2)
            first = await anext(chunks)  # a-1, x-2: rows already handed to the writer
            listed += [cid for cid, _ in first]
            await worker.process(0, ERASE_AND_BACK)  # while the export is between two chunks
            async for rows in chunks:
                listed += [cid for cid, _ in rows]
            return listed
        finally:
            await reader.aclose()
            await client.aclose()  # type: ignore[attr-defined]

    listed = asyncio.run(body())
    assert listed[:2] == ["a-1", X]
    assert listed.count(X) == 1, listed  # observed: ['a-1', 'x-2', 'b-3', 'x-2']
