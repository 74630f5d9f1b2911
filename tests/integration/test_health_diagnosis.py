"""`GET /health` says what is wrong. Redis answering but the namespace built for another partition count than
SEGSTREAM_TOPIC_PARTITIONS (every read answers 409) was reported as `"redis": false`, sending the operator
after a Redis that is fine; a Redis that is really gone still says so, and health comes back with it."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from streams.read import SegmentReader
from streams.read.api import make_app
from streams.read.auth import Authenticator
from streams.settings import Settings
from streams.store.connection import async_client, sync_client
from streams.store.definitions_record import PARTITIONS
from streams.store.keys import KeySpace
from tests.integration.conftest import PORT
from tests.integration.worker_harness import make_settings
from tests.services import Services


async def health(settings: Settings, between: Callable[[], None] | None = None) -> list[tuple[int, Any]]:
    """/health of the real API app over HTTP; with `between`, asked again after it ran."""
    client = async_client(settings.redis_url)
    runner = web.AppRunner(make_app(SegmentReader(client, settings), Authenticator.disabled()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    answers = []
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/health"
        for step in (None, between):
            if step is not None:
                step()
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                answers.append((resp.status, await resp.json()))
            if between is None:
                break
    finally:
        await runner.cleanup()
        await client.aclose()
    return answers


def test_health_names_a_partition_count_mismatch_not_redis(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=4, namespace="main")
    keys = KeySpace(settings.key_prefix, "main", settings.events_topic)
    client = sync_client(settings.redis_url)
    try:
        client.hset(keys.definitions(), PARTITIONS, "8")  # as a worker with 8 partitions records it
    finally:
        client.close()
    [(status, body)] = asyncio.run(health(settings))
    assert status == 503
    assert body["redis"] is True, body
    assert "built for 8 partitions" in body.get("error", ""), body


def test_health_follows_redis_going_and_coming_back(
    private_redis: Callable[[], subprocess.Popen[bytes]], redis_prefix: str
) -> None:
    server = private_redis()
    settings = Settings(redis_url=f"redis://127.0.0.1:{PORT}/0", key_prefix=redis_prefix.rstrip(":"))

    def kill() -> None:
        server.kill()
        server.wait()

    (up, ok), (down, gone) = asyncio.run(health(settings, kill))
    assert (up, ok["status"], ok["redis"]) == (200, "ok", True)
    assert (down, gone["status"], gone["redis"]) == (503, "unavailable", False)
    private_redis()
    [(back, fine)] = asyncio.run(health(settings))
    assert (back, fine["status"]) == (200, "ok")
