"""The HTTP read API as an outsider meets it (issue 12), on a real `python -m streams.read.api` process over
HTTPS, fed by the real worker through Kafka and Redis: keys and scopes, declared data kept out of `why` and
out of profiles without `pii:read`, strict parameters, 405 + Allow, no 5xx under 500 concurrent connections,
a busy pool answers 503 + Retry-After, and schemathesis finds nothing against the OpenAPI document."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from streams.devstack.certs import make_certs
from streams.read import SegmentReader
from streams.read.api import make_app
from streams.read.auth import Authenticator, new_key, parse_keys
from streams.read.http_guard import GATE
from streams.settings import Settings
from streams.store.connection import sync_client
from tests.integration.api_server import DECLARED, Api, definitions_file, feed, serve
from tests.integration.worker_harness import make_settings, read_topic
from tests.services import Services


@pytest.fixture(scope="module")
def world(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Api]]:
    """One worker run and one API process for the whole module (they take seconds; the checks do not)."""
    unique = uuid.uuid4().hex[:12]
    directory = tmp_path_factory.mktemp("api")
    settings = make_settings(
        services,
        lambda base: f"test-{unique}-{base}",
        f"test:{unique}:",
        namespace="main",
        definitions_file=definitions_file(directory),
        # A CI box at load 9 can keep 500 requests queued for a pooled connection past the 1 s default, and
        # the designed answer is then 503: the 500-connection test is about never failing, not about speed.
        api_redis_pool_timeout_s=15.0,
        api_request_timeout_s=30.0,
    )
    feed(settings)
    try:
        with serve(settings, make_certs(directory / "tls")) as api:
            yield settings, api
    finally:
        client = sync_client(services.redis_url)
        for key in list(client.scan_iter(match=f"test:{unique}:*", count=1000)):
            client.delete(key)
        client.close()


def get(api: Api, path: str, key: str | None = None, method: str = "GET") -> tuple[int, Any, Any]:
    async def call() -> tuple[int, Any, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, api.base + path, headers=api.auth(key) if key else {}, ssl=api.ssl) as resp,
        ):
            body = await resp.read()
            parsed = orjson.loads(body) if resp.content_type == "application/json" and body else body
            return resp.status, parsed, resp.headers

    return asyncio.run(call())


def test_every_route_needs_a_key_with_its_scope(world: tuple[Settings, Api]) -> None:
    _, api = world
    routes = {
        "/customers/p1": "prof",
        "/customers/p1/history": "prof",
        "/customers/p1/segments/lifecycle": "prof",
        "/grids": "seg",
        "/grids/lifecycle/segments": "seg",
        "/grids/lifecycle/flows": "seg",
        "/grids/lifecycle/segments/active/members": "members",
        "/metrics": "all",
    }
    for path, key in routes.items():
        status, _, headers = get(api, path)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer"), path
        assert get(api, path, "seg" if key != "seg" else "members")[0] == 403, path
        assert get(api, path, key)[0] == 200, path
    api.tokens["forged"] = api.tokens["all"][:-1] + ("A" if api.tokens["all"][-1] != "A" else "B")
    assert get(api, "/grids", "forged")[0] == 401
    assert get(api, "/health")[0] == 200  # open: load balancers probe it
    assert get(api, "/openapi.json")[0] == 200


def test_declared_data_only_with_pii_scope_and_never_in_a_why(world: tuple[Settings, Api]) -> None:
    settings, api = world
    _, plain, _ = get(api, "/customers/p1", "prof")
    assert plain["declared"] is None and plain["segments"]["age_band"] == "age_35_44"
    _, full, _ = get(api, "/customers/p1", "pii")
    assert full["declared"]["birth_year"] == 1984 and full["declared"]["region"] == "FR"
    records = asyncio.run(read_topic(settings, settings.transitions_topic, 1))
    whys = [orjson.loads(r.value)["data"]["why"] for r in records]
    for cid in DECLARED:
        status, history, _ = get(api, f"/customers/{cid}/history", "all")
        assert status == 200 and history["entries"]
        whys += [entry["why"] for entry in history["entries"]]
    grids = {orjson.loads(r.value)["data"]["grid"] for r in records}
    assert {"age_band", "region", "audience:french_elders"} <= grids  # the grids that read declared data
    for why in whys:
        text = orjson.dumps(why).decode()
        for year, region, gender, _ in DECLARED.values():
            assert str(year) not in text and f'"{region}"' not in text and gender not in text, why
        for field in ("birth_year", "age", "gender", "region", "household"):
            assert why.get(field, "null") in ("declared", "null"), why  # whether declared, never the value


@pytest.mark.parametrize(
    "query",
    ["count=²", "count=0", "count=10001", "count=1e3", "count=٣", "cursor=0:²", "cursor=²:0", "cursor=9:0",
     f"cursor=0:{2**64}", "cursor=0:" + "9" * 30, "cursor=0:-1", "cursor=x"],
)  # fmt: skip
def test_numeric_parameters_are_strict_ascii_with_limits(world: tuple[Settings, Api], query: str) -> None:
    _, api = world
    status, body, _ = get(api, f"/grids/lifecycle/segments/active/members?{query}", "members")
    assert status == 400 and body["status"] == 400


@pytest.mark.parametrize(
    "as_of",
    ["9999-12-31T23:59:59%2B00:00", "0001-01-01T00:00:00%2B00:00", "2026-01-01T00:00:00-23:59",
     "\uff12\uff10\uff12\uff16-01-01T00:00:00Z", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z", "1" * 40],
)  # fmt: skip
def test_extreme_as_of_is_answered_never_500(world: tuple[Settings, Api], as_of: str) -> None:
    _, api = world
    for grid in ("lifecycle", "age_band", "audience:french_elders"):
        status, body, _ = get(api, f"/customers/p1/segments/{grid}?as_of={as_of}", "prof")
        assert status in (200, 400), (grid, as_of, status, body)


def test_wrong_method_answers_405_with_allow(world: tuple[Settings, Api]) -> None:
    _, api = world
    for method in ("POST", "DELETE", "HEAD"):
        status, _, headers = get(api, "/grids", "seg", method=method)
        assert status == 405 and headers["Allow"] == "GET"


def test_500_concurrent_connections_5_waves_no_5xx(world: tuple[Settings, Api]) -> None:
    _, api = world
    paths = ["/customers/p1", "/customers/x7/history", "/grids/rfm/segments", "/customers/p2/segments/rfm"]

    async def run() -> tuple[list[int], list[float]]:
        statuses: list[int] = []
        latencies: list[float] = []
        connector = aiohttp.TCPConnector(limit=500, ssl=api.ssl)
        async with aiohttp.ClientSession(connector=connector, headers=api.auth("all")) as http:

            async def one(i: int) -> None:
                started = time.perf_counter()
                async with http.get(api.base + paths[i % len(paths)]) as resp:
                    await resp.read()
                    statuses.append(resp.status)
                latencies.append(time.perf_counter() - started)

            for _ in range(5):
                await asyncio.gather(*(one(i) for i in range(500)))
        return statuses, latencies

    started = time.perf_counter()
    statuses, latencies = asyncio.run(run())
    elapsed = time.perf_counter() - started
    p50, p99 = (statistics.quantiles(latencies, n=100)[i] * 1000 for i in (49, 98))
    print(
        f"\n500 connections x 5 waves: {len(statuses)} answers, 5xx: {sum(s >= 500 for s in statuses)}, "
        f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, {len(statuses) / elapsed:.0f} requests/s"
    )
    assert len(statuses) == 2500 and set(statuses) == {200}


def test_a_busy_pool_answers_503_with_retry_after(services: Services) -> None:
    """One pooled connection, held: the request waits api_redis_pool_timeout_s, then 503, never 500."""
    settings = Settings(
        redis_url=services.redis_url, api_redis_max_connections=1, api_redis_pool_timeout_s=0.2
    )

    async def run() -> tuple[int, str | None]:
        reader = await SegmentReader.connect(settings)
        app = make_app(reader, Authenticator.disabled(), close_reader=True)
        on_cluster = GATE in app  # a cluster client has no shared pool: the API's gate bounds it
        if on_cluster:
            await app[GATE].slots.acquire()
        else:
            held = await reader.client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/grids/lifecycle/segments") as resp,
            ):
                return resp.status, resp.headers.get("Retry-After")
        finally:
            if on_cluster:
                app[GATE].slots.release()
            else:
                await reader.client.connection_pool.release(held)
            await runner.cleanup()

    assert asyncio.run(run()) == (503, "1")


def test_metrics_can_be_made_public_and_only_metrics(services: Services) -> None:
    """SEGSTREAM_API_METRICS_PUBLIC opens /metrics to a scraper without a key; the rest still needs one."""
    settings = Settings(
        redis_url=services.redis_url, key_prefix=f"test:{uuid.uuid4().hex[:12]}", namespace="m"
    )

    async def run() -> dict[str, int]:
        reader = await SegmentReader.connect(settings)
        auth = Authenticator(parse_keys(new_key("ops", ["segments:read"])[1]))
        runner = web.AppRunner(make_app(reader, auth, close_reader=True, metrics_public=True))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with aiohttp.ClientSession() as http:
                statuses = {}
                for path in ("/metrics", "/grids", "/customers/x"):
                    async with http.get(base + path) as resp:
                        statuses[path] = resp.status
                return statuses
        finally:
            await runner.cleanup()

    assert asyncio.run(run()) == {"/metrics": 200, "/grids": 401, "/customers/x": 401}


def test_schemathesis_finds_nothing(world: tuple[Settings, Api], tmp_path: Path) -> None:
    """All checks; examples per operation from SEGSTREAM_FUZZ_EXAMPLES (CI: 25; docs/security.md: 100)."""
    _, api = world
    examples = os.environ.get("SEGSTREAM_FUZZ_EXAMPLES", "25")
    binary = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [str(binary), "run", f"{api.base}/openapi.json", "--checks", "all", "--max-examples", examples,
         "-H", f"Authorization: Bearer {api.tokens['all']}", "--tls-verify", str(api.ca), "--workers", "1",
         "--seed", "12", "--no-color", "--generation-database", "none"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False,
    )  # fmt: skip
    # one worker: with two threads, hypothesis's ast.parse of lambdas rarely dies in CPython 3.11's "AST
    # constructor recursion depth mismatch" (python/cpython#106905), a crash of the fuzzer, not of the API
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
