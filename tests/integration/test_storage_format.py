"""A namespace of storage format 1 (written by an earlier segstream) is refused in one line, no traceback:
the CLI (card, --json, export) exits 3, the HTTP API answers 409, each naming the namespace and the fix."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
import pytest
import redis
import redis.asyncio as aioredis
from aiohttp import web

from streams import cli
from streams.read.api import make_app
from streams.read.auth import Authenticator
from streams.read.reader import SegmentReader
from streams.settings import Settings
from streams.store.keys import KeySpace
from streams.store.partitioning import partition_for
from streams.store.replies import TEXT_OPTIONS
from tests.integration.test_human_output import known_customer_log, use
from tests.integration.worker_harness import decoded, make_settings
from tests.services import Services

pytestmark = pytest.mark.integration
KNOWN = "known-1"
FIX = "customer hash is in storage format 1, written by an earlier segstream: rebuild the namespace with"


def test_a_format_1_namespace_is_refused_in_one_line_by_the_cli_and_the_api(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    use(settings, monkeypatch)
    log = tmp_path / "events.jsonl"
    known_customer_log(log)
    assert (
        cli.main(["replay", str(log), "--namespace", "old", "--output-dir", str(tmp_path), "--no-progress"])
        == 0
    )
    key = KeySpace(settings.key_prefix, "old", settings.events_topic).customer(partition_for(KNOWN, 2), KNOWN)
    client = redis.Redis.from_url(settings.redis_url, **TEXT_OPTIONS)
    try:  # the customer as a segstream of storage format 1 left it: every field readable, no `state`
        row = decoded(client.hgetall(key))  # type: ignore[arg-type]
        client.hdel(key, "state")
        client.hset(key, mapping={k: v.encode("utf-8", "surrogateescape") for k, v in row.items()})
    finally:
        client.close()
    monkeypatch.setenv("SEGSTREAM_NAMESPACE", "old")
    capsys.readouterr()
    for command in (
        ["customer", KNOWN],
        ["customer", KNOWN, "--json"],
        ["export", "lifecycle", row["segment:lifecycle"]],
    ):
        assert cli.main(command) == 3, command
        out, err = capsys.readouterr()
        assert err == f"segstream {command[0]}: namespace 'old': {FIX} `segstream replay`\n"
        assert "Traceback" not in out + err

    async def http() -> tuple[int, object]:
        reader = SegmentReader(aioredis.Redis.from_url(settings.redis_url, **TEXT_OPTIONS), Settings())
        runner = web.AppRunner(make_app(reader, Authenticator.disabled()))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            url = f"http://127.0.0.1:{port}/customers/{KNOWN}"
            async with aiohttp.ClientSession() as session, session.get(url) as resp:
                return resp.status, orjson.loads(await resp.read())
        finally:
            await runner.cleanup()
            await reader.aclose()

    assert asyncio.run(http()) == (
        409,
        {"error": f"namespace 'old': {FIX} `segstream replay`", "status": 409},
    )


def test_an_unreadable_history_field_is_refused_in_one_line_by_the_cli_and_the_api(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A `history` field of another format (a newer segstream, or damage) is exit 3 / HTTP 409, not a 500."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    use(settings, monkeypatch)
    log = tmp_path / "events.jsonl"
    known_customer_log(log)
    assert (
        cli.main(["replay", str(log), "--namespace", "hist", "--output-dir", str(tmp_path), "--no-progress"])
        == 0
    )
    keys = KeySpace(settings.key_prefix, "hist", settings.events_topic)
    key = keys.customer(partition_for(KNOWN, 2), KNOWN)
    client = redis.Redis.from_url(settings.redis_url, **TEXT_OPTIONS)
    try:
        client.hset(key, "history", "~not a history")
    finally:
        client.close()
    monkeypatch.setenv("SEGSTREAM_NAMESPACE", "hist")
    capsys.readouterr()
    assert cli.main(["customer", KNOWN]) == 3
    out, err = capsys.readouterr()
    assert err.startswith(f"segstream customer: namespace 'hist', customer '{KNOWN}': history")
    assert err.endswith("rebuild the namespace with `segstream replay`\n") and err.count("\n") == 1
    assert "Traceback" not in out + err

    async def http() -> int:
        reader = SegmentReader(aioredis.Redis.from_url(settings.redis_url, **TEXT_OPTIONS), Settings())
        runner = web.AppRunner(make_app(reader, Authenticator.disabled()))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            url = f"http://127.0.0.1:{port}/customers/{KNOWN}/history"
            async with aiohttp.ClientSession() as session, session.get(url) as resp:
                return resp.status
        finally:
            await runner.cleanup()
            await reader.aclose()

    assert asyncio.run(http()) == 409
