"""Paging a pinned namespace over HTTP while it is dropped: refused (409), never a walk that ends short.

The reader checks its namespace once per `namespace_ttl_s`; a page asked within that second of a drop read
the emptied namespace with the check taken before it: empty pages, then no next cursor, HTTP 200, a walk of 3
of 19 members (fourth review of 7 December 2026). The export's check before its first byte is here too: 409,
not a body cut at its start. The drop lands between the reader's check and the request, at no await of ours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from streams import cli
from streams.read.api import make_app
from streams.read.auth import Authenticator
from streams.read.reader import SegmentReader
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.definitions_record import RedisDefinitionsRecord
from streams.store.keys import KeySpace
from tests.integration.test_members_walk_promote import CUSTOMERS, _build, _stack
from tests.services import Services

pytestmark = pytest.mark.integration


async def _served(reader: SegmentReader, then: Callable[[str], Any]) -> Any:
    runner = web.AppRunner(make_app(reader, Authenticator.disabled(), close_reader=True))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        return await then(f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as resp:
        body = await resp.read()
        return resp.status, orjson.loads(body) if resp.content_type == "application/json" else body


def test_pages_and_an_export_of_a_pinned_namespace_dropped_within_the_reader_s_check_are_409(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _stack(services, topic_name, redis_prefix, monkeypatch, namespace="blue")
    _build(tmp_path, "blue", CUSTOMERS)
    _build(tmp_path, "green", CUSTOMERS)
    assert cli.main(["promote", "green"]) == 0  # blue is pinned, not active: `drop` takes it

    async def scenario(base: str) -> list[tuple[int, Any]]:
        members = base + "/grids/lifecycle/segments/new/members?count=3"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            first = await _get(session, members)  # the reader's check is taken and kept (a minute)
            assert first[0] == 200 and len(first[1]["members"]) == 3, first
            assert await asyncio.to_thread(cli.main, ["drop", "blue"]) == 0
            export = await _get(session, base + "/grids/lifecycle/segments/new/export")
            second = await _get(session, members + "&cursor=" + first[1]["next_cursor"])
            fresh = await _get(session, members)  # a new walk, once a refusal dropped the stale check
            return [second, fresh, export]

    async def run() -> list[tuple[int, Any]]:
        reader = await SegmentReader.connect(Settings(), namespace_ttl_s=60.0)
        seen: list[tuple[int, Any]] = await _served(reader, scenario)
        return seen

    second, fresh, export = asyncio.run(run())
    assert fresh == (200, {"grid": "lifecycle", "segment": "new", "members": [], "next_cursor": None})
    for status, body in (second, export):  # a new walk reads the namespace as it is now (checked again)
        assert status == 409, (status, body)
        assert "'blue', where this walk began, was dropped or built again" in body["error"], body


def test_a_new_walk_after_a_namespace_s_first_record_is_answered_not_refused(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check after each page compares with the reader's check, up to a minute old here: a first worker
    recording the namespace meanwhile made every new walk's first page 409 until that check expired."""
    settings = _stack(services, topic_name, redis_prefix, monkeypatch, namespace="bare")
    _build(tmp_path, "bare", CUSTOMERS)
    keys = KeySpace(settings.key_prefix, "bare", settings.events_topic)
    sync = sync_client(settings.redis_url)
    sync.delete(keys.definitions())  # nothing recorded yet

    async def walks() -> tuple[list[str], list[str]]:
        reader = await SegmentReader.connect(Settings(), namespace_ttl_s=60.0)
        try:
            before = (await reader.members_page("lifecycle", "new", None, 50)).members
            record = RedisDefinitionsRecord(reader.client, settings.key_prefix, settings.events_topic)
            await record.record_partitions("bare", 2)  # a first worker starts on it
            return before, (await reader.members_page("lifecycle", "new", None, 50)).members
        finally:
            await reader.aclose()

    try:
        before, after = asyncio.run(walks())
    finally:
        sync.close()
    assert sorted(before) == sorted(after) == sorted(CUSTOMERS)
