"""Hostile parameters on a real HTTPS API process over the real Redis and Kafka: a number too long for
Python's `int()` (more than 4,300 digits raises ValueError, not a parse failure) must be a 400 naming the
parameter, never a 500 (docs/security.md: strict digit parsing with limits, 400)."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from streams.devstack.certs import make_certs
from streams.settings import Settings
from streams.store.connection import sync_client
from tests.integration.api_server import Api, feed, serve
from tests.integration.worker_harness import make_settings
from tests.services import Services

HUGE = "9" * 5000  # past sys.get_int_max_str_digits() (4,300)


@pytest.fixture(scope="module")
def world(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Api]]:
    unique = uuid.uuid4().hex[:12]
    directory = tmp_path_factory.mktemp("api")
    settings = make_settings(
        services, lambda base: f"test-{unique}-{base}", f"test:{unique}:", namespace="main"
    )
    feed(settings)  # also makes the transitions topic the changes route reads
    try:
        with serve(settings, make_certs(directory / "tls")) as api:
            yield settings, api
    finally:
        client = sync_client(services.redis_url)
        for key in list(client.scan_iter(match=f"test:{unique}:*", count=1000)):
            client.delete(key)
        client.close()


def call(api: Api, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    async def run() -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, api.base + path, headers=api.auth("all"), data=body, ssl=api.ssl) as resp,
        ):
            raw = await resp.read()
            return resp.status, orjson.loads(raw) if resp.content_type == "application/json" else raw

    return asyncio.run(run())


def test_preview_limit_of_5000_digits_is_400(world: tuple[Settings, Api]) -> None:
    _, api = world
    definitions = (Path(__file__).parents[2] / "segmentation" / "definitions.yaml").read_bytes()
    status, body = call(api, "POST", f"/definitions/preview?limit={HUGE}", definitions)
    assert status == 400 and "limit" in body["error"], (status, body)


def test_changes_cursor_offset_of_5000_digits_is_400(world: tuple[Settings, Api]) -> None:
    settings, api = world
    others = ",".join(f"{p}:0" for p in range(1, settings.topic_partitions))
    status, body = call(api, "GET", f"/grids/rfm/segments/champions/changes?cursor=0:{HUGE},{others}")
    assert status == 400 and "cursor" in body["error"], (status, body)


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("cursor=0:1,0:2", "twice"),  # the last value won in silence
    ],
)
def test_a_changes_period_that_cannot_be_meant_is_400(
    world: tuple[Settings, Api], query: str, said: str
) -> None:
    settings, api = world
    if "cursor" in query:
        query += "".join(f",{p}:0" for p in range(1, settings.topic_partitions))
    status, body = call(api, "GET", f"/grids/rfm/segments/champions/changes?{query}")
    assert status == 400 and said in body["error"], (status, body)


def test_a_kpi_day_is_a_calendar_day_not_an_iso_week_date(world: tuple[Settings, Api]) -> None:
    """Both are 10 characters: a length check let "2026-W01-1" through as 29 December 2025."""
    _, api = world
    status, body = call(api, "GET", "/grids/lifecycle/kpis?from=2026-W01-1&to=2026-01-31")
    assert status == 400 and "YYYY-MM-DD" in body["error"], (status, body)


def raw_request(api: Api, request: bytes) -> bytes:
    """Bytes no HTTP client library would send, over the API's TLS; the whole answer."""
    host, port = api.base.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=10) as plain,
        api.ssl.wrap_socket(plain, server_hostname=host) as tls,
    ):
        tls.sendall(request)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    return answer


def test_a_malformed_request_is_400_and_one_log_line_without_its_bytes(world: tuple[Settings, Api]) -> None:
    _, api = world
    log = api.ca.parent / "api.log"
    before = log.read_bytes()
    marker = b"jane.doe-at-example.com"  # a customer id (an email, say) in a request line aiohttp refuses
    bad = [
        b"GET /customers/" + marker + b"\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /customers/" + marker + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Note: "
        + marker
        + b"b" * 9000
        + b"\r\nConnection: close\r\n\r\n",
    ]
    for request in bad:
        assert raw_request(api, request).startswith(b"HTTP/1.0 400"), request[:40]
    time.sleep(0.2)
    written = log.read_bytes()[len(before) :].decode()
    assert "Traceback" not in written and marker.decode() not in written, written[:2000]
    assert len(written.splitlines()) == len(bad), written[:2000]
