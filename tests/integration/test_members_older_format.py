"""A members listing over a namespace of an earlier layout is refused like every other read, naming the fix:
HTTP 409 (docs/read_side.md: "the HTTP API answers 409"), the client's `StoredFormatError`. Before, a
namespace whose membership was kept in sets (before 3 December 2026) answered a generic 500 "internal error"
(the reader's OlderFormat, with its "rebuild it with `segstream replay`" line, went to the log only), and one
the card, the export and the KPIs refuse (`days` = `week-short`) was listed as if current."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from segmentation import Definitions
from streams.read.api import make_app
from streams.read.auth import Authenticator
from streams.read.reader import SegmentReader
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.redis_store import RedisStateStore
from streams.store.replies import TEXT_OPTIONS
from streams.store.stored_state import StoredFormatError
from streams.worker.batch import Record
from streams.worker.loop import Worker
from tests.integration.test_worker_history import purchase
from tests.services import Services

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, tzinfo=UTC)
IDS = ("a-1", "b-2")
FEED = [
    Record("events", 0, n, cid.encode(), purchase(f"p-{cid}", cid, T0 + timedelta(hours=n)))
    for n, cid in enumerate(IDS)
]


def _settings(services: Services, prefix: str) -> Settings:
    return Settings(
        redis_url=services.redis_url, key_prefix=prefix.rstrip(":"), namespace="main",
        events_topic="events", topic_partitions=1, mode="replay",
    )  # fmt: skip


async def _older(settings: Settings, layout: str) -> None:
    """The namespace as the worker writes it, then made to look like one of an earlier segstream."""
    client = async_client(settings.redis_url)
    keys = KeySpace(settings.key_prefix, "main", "events")
    worker = Worker(settings, Definitions.default(), RedisStateStore(client, keys), None, None)
    try:
        await worker.own(0)
        await worker.process(0, FEED)
        if layout == "sets":  # membership in sets, no `days` format field yet
            await client.delete(keys.members(0, "lifecycle", "new"))
            await client.sadd(keys.members(0, "lifecycle", "new"), *IDS)
            await client.hdel(keys.partition_meta(0), "days")
        else:  # segments named `segment:<grid>` (4 December 2026)
            await client.hset(keys.partition_meta(0), "days", "week-short")
    finally:
        await client.aclose()


async def _get(settings: Settings, path: str) -> tuple[int, object]:
    reader = SegmentReader(async_client(settings.redis_url, **TEXT_OPTIONS), settings)
    runner = web.AppRunner(make_app(reader, Authenticator.disabled(), close_reader=True))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            return resp.status, await resp.json()
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("layout", ["sets", "week-short"])
def test_members_of_an_older_namespace_are_refused_naming_the_fix(
    services: Services, redis_prefix: str, layout: str
) -> None:
    settings = _settings(services, redis_prefix)
    asyncio.run(_older(settings, layout))
    status, body = asyncio.run(_get(settings, "/grids/lifecycle/segments/new/members"))
    # observed before the fix: 500 {"error": "internal error"} (sets), 200 with both ids (week-short)
    assert status == 409, (status, body)
    assert "older format" in str(body) and "segstream replay" in str(body), body

    async def listed() -> None:
        reader = SegmentReader(async_client(settings.redis_url, **TEXT_OPTIONS), settings)
        try:
            await reader.members_page("lifecycle", "new")
        finally:
            await reader.aclose()

    with pytest.raises(StoredFormatError, match="segstream replay"):
        asyncio.run(listed())
