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
            second = await _get(session, members + "&cursor=" + first[1]["next_cursor"])
            fresh = await _get(session, members)
            export = await _get(session, base + "/grids/lifecycle/segments/new/export")
            return [second, fresh, export]

    async def run() -> list[tuple[int, Any]]:
        reader = await SegmentReader.connect(Settings(), namespace_ttl_s=60.0)
        seen: list[tuple[int, Any]] = await _served(reader, scenario)
        return seen

    second, fresh, export = asyncio.run(run())
    for status, body in (second, fresh, export):
        assert status == 409, (status, body)
        assert "'blue', where this walk began, was dropped or built again" in body["error"], body
