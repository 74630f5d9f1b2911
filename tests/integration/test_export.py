"""Audience export (issue 16, item 3) on a namespace the real worker built through Kafka and Redis: exact rows
from the CLI and from a real API process, in CSV and JSON lines, chosen columns, declared data only with the
right to it, and the documented errors (exit code 2; HTTP 400, 403, 404)."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from streams.devstack.certs import make_certs
from streams.read.columns import DEFAULT_COLUMNS
from streams.settings import Settings
from streams.store.connection import sync_client
from tests.integration.api_server import DECLARED, T0, Api, definitions_file, feed, serve
from tests.integration.worker_harness import make_settings, stored_customers
from tests.services import Services

COLUMNS = "customer_id,segment:lifecycle,orders,net,currency,last_purchase_at,rfm:f"


@pytest.fixture(scope="module")
def world(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Api]]:
    """43 customers fed through the worker (3 with declared data, one in the `french_elders` audience)."""
    unique = uuid.uuid4().hex[:12]
    directory = tmp_path_factory.mktemp("export")
    settings = make_settings(
        services,
        lambda base: f"test-{unique}-{base}",
        f"test:{unique}:",
        namespace="main",
        definitions_file=definitions_file(directory),
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


def expected_rows() -> dict[str, list[str]]:
    """What the scripted events make of each customer, written by hand: `p*` bought 80.00 then 25.00
    (3 days later), `x<i>` bought 40.00 at T0 + i hours; all are `new` (first purchase < 30 days old)."""
    rows: dict[str, list[str]] = {}
    for n, cid in enumerate(DECLARED):
        last = (T0 + timedelta(days=n + 3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows[cid] = [cid, "new", "2", "105.00", "EUR", last, "2"]
    for i in range(40):
        last = (T0 + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows[f"x{i}"] = [f"x{i}", "new", "1", "40.00", "EUR", last, "1"]
    return rows


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "export", *args],
        env=settings.as_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def csv_rows(text: str) -> tuple[list[str], dict[str, list[str]]]:
    header, *rows = list(csv.reader(io.StringIO(text)))
    by_id = {row[0]: row for row in rows}
    assert len(by_id) == len(rows), "a member listed twice"
    return header, by_id


def http(api: Api, path: str, key: str | None = "all", accept: str | None = None) -> tuple[int, bytes, Any]:
    async def call() -> tuple[int, bytes, Any]:
        headers = api.auth(key) if key else {}
        if accept:
            headers["Accept"] = accept
        async with (
            aiohttp.ClientSession() as session,
            session.get(api.base + path, headers=headers, ssl=api.ssl) as resp,
        ):
            return resp.status, await resp.read(), resp.headers

    return asyncio.run(call())


def test_the_scripted_customers_are_where_the_rows_say(world: tuple[Settings, Api]) -> None:
    """The hashes the worker wrote agree with the hand-written expectation (else the tests below prove
    nothing about the export itself)."""
    settings, _ = world
    stored = stored_customers(settings)
    assert {cid: h["lifecycle"] for cid, h in stored.items()} == dict.fromkeys(expected_rows(), "new")
    assert {cid for cid, h in stored.items() if h.get("audience:french_elders") == "member"} == {"p1"}
    assert not any("audience:french_elders" in h for cid, h in stored.items() if cid != "p1")  # not stored


@pytest.mark.parametrize(
    "columns",
    ["customer_id,segment:lifecycle,orders", "customer_id,segment:audience:french_elders,last_purchase_at"],
)
def test_an_audience_s_non_members_are_exported_though_their_hashes_leave_the_answer_absent(
    world: tuple[Settings, Api], tmp_path: Path, columns: str
) -> None:
    """`not_member` is not stored (absent): the export still walks its bitmap and keeps each customer
    whose hash exists, with the readers' texts (the ISO time, `not_member`), on both read paths."""
    settings, _ = world
    out = tmp_path / "out.csv"
    done = cli(settings, "audience:french_elders", "not_member", "--columns", columns, "--output", str(out))
    assert done.returncode == 0, done.stderr
    header, rows = csv_rows(out.read_text())
    expected = {cid: row for cid, row in expected_rows().items() if cid != "p1"}
    assert set(rows) == set(expected) and header == columns.split(",")
    if "orders" in columns:
        assert rows == {cid: [cid, "new", row[2]] for cid, row in expected.items()}
    else:
        assert rows == {cid: [cid, "not_member", row[5]] for cid, row in expected.items()}


def test_cli_csv_has_exactly_the_members_with_the_chosen_columns(
    world: tuple[Settings, Api], tmp_path: Path
) -> None:
    settings, _ = world
    out = tmp_path / "new.csv"
    done = cli(settings, "lifecycle", "new", "--columns", COLUMNS, "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "exported 43 members of lifecycle new (namespace main) to " + str(out)
    header, rows = csv_rows(out.read_text())
    assert header == COLUMNS.split(",")
    assert rows == expected_rows()
    assert not (tmp_path / "new.csv.part").exists()


def test_cli_jsonl_to_stdout_and_default_columns(world: tuple[Settings, Api]) -> None:
    settings, _ = world
    done = cli(settings, "lifecycle", "new", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "exported 43 members of lifecycle new (namespace main)"
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    by_id = {line["customer_id"]: line for line in lines}
    assert len(lines) == len(by_id) == 43
    assert all(list(line) == list(DEFAULT_COLUMNS) for line in lines)
    assert by_id["p2"] == {
        "customer_id": "p2",
        "segment:lifecycle": "new",
        "segment:rfm": by_id["p2"]["segment:rfm"],
        "segment:value": by_id["p2"]["segment:value"],
        "rfm:r": 5,
        "rfm:f": 2,
        "rfm:m": 2,
        "orders": 2,
        "net": {"amount": "105.00", "currency": "EUR"},
        "currency": "EUR",
        "last_purchase_at": "2026-01-09T09:00:00Z",
    }
    stored = stored_customers(settings)["p2"]
    assert (by_id["p2"]["segment:rfm"], by_id["p2"]["segment:value"]) == (
        stored["rfm"],
        stored["value"],
    )


def test_cli_audience_and_declared_columns_need_the_flag(world: tuple[Settings, Api]) -> None:
    settings, _ = world
    refused = cli(settings, "audience", "french_elders", "--columns", "customer_id,birth_year,region")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "birth_year, region hold declared personal data" in refused.stderr
    done = cli(
        settings, "audience", "french_elders", "--columns", "customer_id,birth_year,region", "--declared"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "customer_id,birth_year,region\np1,1984,FR\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lifecycel", "new"], "unknown grid 'lifecycel'"),
        (["lifecycle", "newbie"], "unknown segment 'newbie' of 'lifecycle'"),
        (["audience", "nobody"], "unknown grid 'audience:nobody'"),
        (["lifecycle", "new", "--columns", "customer_id,nett"], "unknown column(s) 'nett'"),
        (["lifecycle"], "name a segment of 'lifecycle'"),
        (["lifecycle", "new", "--since", "2026-12-01T00:00:00"], "--since needs a zone"),
    ],
)
def test_cli_errors_are_one_line_with_exit_code_2_and_no_file(
    world: tuple[Settings, Api], tmp_path: Path, args: list[str], message: str
) -> None:
    settings, _ = world
    out = tmp_path / "out.csv"
    done = cli(settings, *args, "--output", str(out))
    assert done.returncode == 2
    assert done.stderr.startswith("segstream export: ") and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "out.csv.part").exists()


def test_api_streams_the_same_rows_as_the_cli(world: tuple[Settings, Api]) -> None:
    settings, api = world
    path = f"/grids/lifecycle/segments/new/export?columns={COLUMNS}"
    status, body, headers = http(api, path + "&format=csv")
    assert status == 200 and headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Transfer-Encoding"] == "chunked"
    header, rows = csv_rows(body.decode())
    assert header == COLUMNS.split(",") and rows == expected_rows()
    cli_out = cli(settings, "lifecycle", "new", "--columns", COLUMNS).stdout
    assert sorted(body.decode().splitlines()) == sorted(cli_out.splitlines())
    status, body, headers = http(api, path, accept="application/x-ndjson")
    assert status == 200 and headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
    lines = [orjson.loads(line) for line in body.splitlines()]
    assert {line["customer_id"]: line["net"] for line in lines} == {
        cid: {"amount": row[3], "currency": "EUR"} for cid, row in expected_rows().items()
    }


def test_api_audience_declared_columns_need_pii_scope(world: tuple[Settings, Api]) -> None:
    _, api = world
    path = "/grids/audience:french_elders/segments/member/export?columns=customer_id,birth_year,gender"
    status, body, _ = http(api, path, key="members")
    assert status == 403 and b"pii:read" in body
    status, body, _ = http(api, path, key="all")
    assert status == 200 and body == b"customer_id,birth_year,gender\np1,1984,female\n"
    status, body, _ = http(api, "/grids/audience:french_elders/segments/member/export", key="members")
    assert status == 200 and body.splitlines()[1].startswith(b"p1,new,")


@pytest.mark.parametrize(
    ("path", "key", "status"),
    [
        ("/grids/lifecycle/segments/new/export", None, 401),
        ("/grids/lifecycle/segments/new/export", "pii", 403),  # profiles + pii, no members:read
        ("/grids/nogrid/segments/new/export", "all", 404),
        ("/grids/lifecycle/segments/newbie/export", "all", 404),
        ("/grids/lifecycle/segments/new/export?columns=customer_id,nett", "all", 400),
        ("/grids/lifecycle/segments/new/export?format=xml", "all", 400),
        ("/grids/lifecycle/segments/new/changes?since=2026-12-01T00:00:00", "all", 400),  # no zone
        ("/grids/lifecycle/segments/new/changes?cursor=0:1", "all", 400),  # 2 partitions
        ("/grids/lifecycle/segments/new/changes?since=2026-12-01T00:00:00Z&after_export=yes", "all", 400),
    ],
)
def test_api_errors(world: tuple[Settings, Api], path: str, key: str | None, status: int) -> None:
    _, api = world
    got, body, headers = http(api, path, key=key)
    assert got == status, body
    assert headers["Content-Type"].startswith("application/json")
    assert orjson.loads(body)["status"] == status


def test_cli_unknown_pinned_namespace_is_refused_with_exit_code_3(world: tuple[Settings, Api]) -> None:
    settings, _ = world
    done = cli(settings.model_copy(update={"namespace": "mian"}), "lifecycle", "new")
    assert done.returncode == 3 and done.stdout == ""
    assert "mian" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_an_export_is_not_cut_by_the_request_deadline(world: tuple[Settings, Api]) -> None:
    """The per-request deadline (503 past it) would cut a long export: exports are exempt, others are not."""
    from aiohttp import web

    from streams.read import SegmentReader
    from streams.read.api import make_app
    from streams.read.auth import Authenticator

    settings, _ = world

    async def run() -> tuple[int, int, int]:
        reader = await SegmentReader.connect(settings)
        app = make_app(reader, Authenticator.disabled(), close_reader=True, request_timeout_s=1e-6)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
                async with session.get(base + "/grids/lifecycle/segments") as resp:
                    kpis = resp.status
                async with session.get(base + "/grids/lifecycle/segments/new/export") as resp:
                    return kpis, resp.status, len((await resp.read()).splitlines())
        finally:
            await runner.cleanup()

    assert asyncio.run(run()) == (503, 200, 44)


def test_a_failure_after_the_first_byte_cuts_the_connection(
    private_redis: Any, tmp_path: Path, services: Services
) -> None:
    """Redis dies mid-export: the client sees an incomplete transfer (the chunked body never ends), never a
    short export that looks complete."""
    from aiohttp import web

    from benchmarks.bench_export import PARTITIONS, TOPIC, fill
    from streams.read import SegmentReader
    from streams.read.api import make_app
    from streams.read.auth import Authenticator
    from streams.store.keys import KeySpace
    from tests.integration.conftest import PORT

    server = private_redis()
    url = f"redis://127.0.0.1:{PORT}/0"
    fill(sync_client(url), KeySpace("cut", "main", TOPIC), 0, 40_000)
    settings = Settings(redis_url=url, key_prefix="cut", namespace="main", events_topic=TOPIC,
                        topic_partitions=PARTITIONS, redis_timeout_s=2)  # fmt: skip

    async def run() -> tuple[int, int, str]:
        reader = await SegmentReader.connect(settings)
        runner = web.AppRunner(make_app(reader, Authenticator.disabled(), close_reader=True))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        received = 0
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
                session.get(base + "/grids/lifecycle/segments/active/export") as resp,
            ):
                received += len(await resp.content.read(1000))
                server.kill()  # Redis gone while the export still has ~39,000 rows to read
                server.wait()
                try:
                    async for block in resp.content.iter_any():
                        received += len(block)
                except aiohttp.ClientPayloadError as exc:
                    return resp.status, received, type(exc).__name__
                return resp.status, received, "complete"
        finally:
            await runner.cleanup()

    status, received, outcome = asyncio.run(run())
    assert (status, outcome) == (200, "ClientPayloadError")
    assert 0 < received < 40_000 * 40  # some rows arrived, far from all of them
