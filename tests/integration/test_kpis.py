"""Per-segment KPIs and grid crossings on the real worker, Kafka and Redis: a scripted history gives exact
retention, conversion, churn, revenue share, frequency and basket; the crossing matches the customers; the
CLI and the HTTP API serve the same; a file replay (two batch sizes) writes the KPI keys the worker writes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from streams.read import SegmentReader
from streams.read.api import make_app
from streams.read.auth import Authenticator
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.day_names import named, period_named
from tests.integration.replay_helpers import dump_namespace, replay_file
from tests.integration.test_worker_history import ev, purchase
from tests.integration.test_worker_kill import caught_up, end_offsets
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    run_worker_until,
)
from tests.services import Services

MARCH = (date(2026, 3, 1), date(2026, 3, 31))


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def refund(event_id: str, customer: str, when: datetime, amount: str) -> bytes:
    return ev(event_id, "refund", customer, when, order_id="o-x", amount=amount, currency="EUR")


def scripted() -> list[bytes]:
    """ann: bought Dec 1 (new, active Dec 31), at_risk Mar 1 09:00, buys Mar 10 (reactivated) and Mar 20
    (sent twice: one counts), refunds 20.00 Mar 25. bob: bought Sep 1, lost since Feb 28. cid: bought
    Sep 15 (100.00, value medium), lost Mar 14. dan: visits Mar 3 (prospect), buys 10.00 Mar 4 (new).
    eve: visits Feb 10, a prospect ever since. The late visits only make time-driven moves happen."""
    return [
        purchase("b1", "bob", at("2025-09-01"), "200.00"),
        purchase("c1", "cid", at("2025-09-15"), "100.00"),
        purchase("a1", "ann", at("2025-12-01"), "50.00"),
        ev("e1", "web_visit", "eve", at("2026-02-10")),
        ev("d1", "web_visit", "dan", at("2026-03-03")),
        purchase("d2", "dan", at("2026-03-04"), "10.00"),
        ev("b2", "web_visit", "bob", at("2026-03-05")),
        purchase("a2", "ann", at("2026-03-10"), "20.00"),
        purchase("a3", "ann", at("2026-03-20"), "30.00"),
        purchase("a3", "ann", at("2026-03-20"), "30.00"),  # a redelivered duplicate: no effect
        refund("a4", "ann", at("2026-03-25"), "20.00"),
        ev("c2", "web_visit", "cid", at("2026-03-25")),
    ]


def _eur(amount: str | None) -> dict[str, str] | None:
    return None if amount is None else {"amount": amount, "currency": "EUR"}


def row(
    start: int, end: int, entrants: int, exits: int, orders: int, revenue: str, share: float | None,
    basket: str | None, converted: int, conversion: float | None, churned: int, churn_rate: float | None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "customers_at_start": start, "customers_at_end": end, "entrants": entrants, "exits": exits,
        "orders": orders, "revenue_minor": round(float(revenue) * 100), "revenue": _eur(revenue),
        "revenue_share": share, "average_basket": _eur(basket), "converted": converted,
        "conversion": conversion, "churned": churned, "churn_rate": churn_rate,
    }  # fmt: skip


def cohort(
    start: int, buyers: int, retention: float | None, orders: int, revenue: str, frequency: float | None,
    basket: str | None,
) -> dict[str, Any]:  # fmt: skip
    return {
        "customers_at_start": start, "buyers": buyers, "retention": retention, "orders": orders,
        "revenue_minor": round(float(revenue) * 100), "revenue": _eur(revenue),
        "purchase_frequency": frequency, "average_basket": _eur(basket),
    }  # fmt: skip


# Lifecycle over March 2026, worked out by hand from the script above (docs/read_side.md, definitions).
LIFECYCLE_MARCH = {
    # eve at the start; dan enters Mar 3 and leaves Mar 4 by buying (his entry converted)
    "prospect": row(1, 1, 1, 1, 0, "0.00", 0.0, None, 1, 1.0, 0, 0.0),
    # dan's first purchase leaves him in new: 10.00 of the month's 40.00
    "new": row(0, 1, 1, 0, 1, "10.00", 0.25, "10.00", 0, 0.0, 0, None),
    # ann at the start, at_risk on Mar 1
    "active": row(1, 0, 0, 1, 0, "0.00", 0.0, None, 0, None, 0, 0.0),
    # cid at the start; ann enters Mar 1 (converted by her Mar 10 purchase) and leaves; cid churns Mar 14
    "at_risk": row(1, 0, 1, 2, 0, "0.00", 0.0, None, 1, 1.0, 1, 1.0),
    "lost": row(1, 2, 1, 0, 0, "0.00", 0.0, None, 0, 0.0, 0, 0.0),
    # ann's purchases of Mar 10 and 20 (20.00 + 30.00) less her 20.00 refund; her entry converted Mar 20
    "reactivated": row(0, 1, 1, 0, 2, "30.00", 0.75, "15.00", 1, 1.0, 0, None),
}
LIFECYCLE_MARCH_COHORTS = {
    "prospect": cohort(1, 0, 0.0, 0, "0.00", None, None),
    "new": cohort(0, 0, None, 0, "0.00", None, None),
    "active": cohort(1, 1, 1.0, 2, "30.00", 2.0, "15.00"),  # ann, active at the start, bought twice
    "at_risk": cohort(1, 0, 0.0, 0, "0.00", None, None),
    "lost": cohort(1, 0, 0.0, 0, "0.00", None, None),
    "reactivated": cohort(0, 0, None, 0, "0.00", None, None),
}
# lifecycle x value now: (customers, orders, net revenue minor)
CROSSING = {
    ("reactivated", "low"): (1, 3, 8000),  # ann: 50 + 20 + 30 - 20
    ("lost", "medium"): (2, 2, 30000),  # bob 200.00, cid 100.00
    ("new", "low"): (1, 1, 1000),  # dan
    ("prospect", "none"): (1, 0, 0),  # eve
}


def _applied(settings: Settings, total: int) -> Callable[[], bool]:
    return lambda: sum((o if o is not None else -1) + 1 for o in applied_offsets(settings).values()) == total


def test_scripted_history_gives_exact_kpis_and_crossing_through_client_cli_and_api(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    lines = scripted()

    async def scenario() -> None:
        await produce(settings, lines, customer_key)
        await run_worker_until(settings, _applied(settings, len(lines)))
        client = async_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
        reader = SegmentReader(client, settings)
        try:
            kpis = (await reader.grid_kpis("lifecycle", *MARCH)).model_dump(mode="json")
            assert kpis["segments"] == LIFECYCLE_MARCH
            assert (kpis["orders"], kpis["revenue"]) == (3, _eur("40.00"))
            assert [p["period"] for p in kpis["periods"]] == ["2026-03"]
            assert kpis["periods"][0]["segments"] == LIFECYCLE_MARCH_COHORTS
            # the churn counts for the segments cid held in every grid: medium in value
            value = await reader.grid_kpis("value", *MARCH)
            assert value.segments["medium"].churned == 1
            assert sum(s.churned for s in value.segments.values()) == 1
            # February: bob's move to lost (Feb 28) is its churn; eve entered prospect
            february = await reader.grid_kpis("lifecycle", date(2026, 2, 1), date(2026, 2, 28))
            assert february.segments["at_risk"].churned == 1
            assert february.segments["prospect"].entrants == 1
            # the crossing, either way round
            cross = await reader.crosstab("lifecycle", "value")
            got = {
                (r, c): (cell.customers, cell.orders, cell.revenue_minor)
                for r, cells in cross.cells.items()
                for c, cell in cells.items()
                if cell.customers or cell.orders or cell.revenue_minor
            }
            assert got == CROSSING
            flipped = await reader.crosstab("value", "lifecycle")
            assert flipped.cells["medium"]["lost"] == cross.cells["lost"]["medium"]
            assert cross.cells["lost"]["medium"].average_basket is not None
            assert cross.cells["lost"]["medium"].average_basket.amount == "150.00"
            await _http(reader, kpis)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    _cli(settings, tmp_path)


async def _http(reader: SegmentReader, kpis: dict[str, Any]) -> None:
    runner = web.AppRunner(make_app(reader, Authenticator.disabled()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            async with http.get("/grids/lifecycle/kpis?from=2026-03-01&to=2026-03-31") as r:
                assert r.status == 200 and await r.json() == kpis
            async with http.get("/grids/lifecycle/kpis?from=2026-04-01&to=2026-03-01") as r:
                empty = await r.json()  # from after to: an empty range
                assert r.status == 200 and empty["orders"] == 0 and empty["periods"] == []
            async with http.get("/crosstab/value/lifecycle") as r:
                body = await r.json()
                assert r.status == 200 and body["cells"]["low"]["reactivated"]["customers"] == 1
            for path, status in (
                ("/grids/lifecycle/kpis?from=2026-3-1", 400),
                ("/grids/lifecycle/kpis?to=", 400),
                ("/grids/nope/kpis", 404),
                ("/crosstab/rfm/email", 404),
            ):
                async with http.get(path) as r:
                    assert r.status == status, path
            async with http.get("/openapi.json") as r:
                paths = (await r.json())["paths"]
                assert {"/grids/{grid}/kpis", "/crosstab/{rows}/{columns}"} <= set(paths)
    finally:
        await runner.cleanup()


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _cli(settings: Settings, tmp_path: Path) -> None:
    env = {
        "SEGSTREAM_REDIS_URL": settings.redis_url,
        "SEGSTREAM_KEY_PREFIX": settings.key_prefix,
        "SEGSTREAM_NAMESPACE": "main",
        "SEGSTREAM_EVENTS_TOPIC": settings.events_topic,
        "SEGSTREAM_TOPIC_PARTITIONS": str(settings.topic_partitions),
    }
    args = ["kpis", "--grid", "lifecycle", "--from", "2026-03-01", "--to", "2026-03-31"]
    done = run_cli([*args, "--format", "json"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["lifecycle"]["segments"] == LIFECYCLE_MARCH
    table = run_cli(args, env)
    assert table.returncode == 0, table.stderr
    assert "retention 2026-03" in table.stdout
    reactivated = next(x for x in table.stdout.splitlines() if x.startswith("reactivated"))
    assert reactivated.split()[5:9] == ["2", "30.00", "75.0%", "15.00"]
    cross = run_cli(["crosstab", "lifecycle", "value"], env)
    assert cross.returncode == 0, cross.stderr
    lost = next(x for x in cross.stdout.splitlines() if x.startswith("lost"))
    assert lost.split()[1:] == ["0", "0", "2", "0", "0"]  # columns: none low medium high top
    unknown = run_cli(["crosstab", "rfm", "email"], env)
    assert unknown.returncode == 2 and "not kept" in unknown.stderr
    bad = run_cli(["kpis", "--grid", "nope"], env)
    assert bad.returncode == 2 and "unknown grid" in bad.stderr


def test_a_replay_writes_the_same_kpi_keys_as_the_live_worker(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    from streams.sample import generator as sample

    spec = sample.SampleSpec(customers=150, days=300, seed=11, malformed_share=0.01, erasure_share=0.05)
    path = tmp_path / "events.jsonl.gz"
    total = sample.write_jsonl(spec, path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2, batch_max_events=300)
    asyncio.run(replay_file(settings, path, "ra", tmp_path, batch=2000))
    asyncio.run(replay_file(settings, path, "rb", tmp_path, batch=97))
    # The worker (replay mode, as make_settings: its clock is the watermark) sweeps on its own timer (the
    # default 1 s here), not after every batch: stopped as soon as the last event is applied, it may not have
    # swept its final watermark yet (a customer due by then, e.g. an email score decaying past a threshold on
    # the last day, has not moved), which the replay's final sweep has done; its next sweep would. So stop it
    # only once it has swept too: every event applied and nothing due at or before its watermark.
    live = settings.model_copy(update={"namespace": "live", "sweep_interval_ms": 1000})
    lines = [x for x in __import__("gzip").decompress(path.read_bytes()).splitlines() if x.strip()]
    asyncio.run(produce(live, lines, lambda line: (sample.recover_customer_id(line) or "").encode() or None))
    ends = end_offsets(live)
    assert sum(ends.values()) == total
    asyncio.run(run_worker_until(live, caught_up(live, ends), timeout=180))

    def kpi_keys(namespace: str) -> dict[str, Any]:
        dump = dump_namespace(settings, namespace)
        return {
            k: v
            for k, v in dump.items()
            if any(f"}}:{kind}:" in k for kind in ("d", "r", "x", "k", "f", "t"))
        }

    a, b, worker = kpi_keys("ra"), kpi_keys("rb"), kpi_keys("live")
    assert any(":d:lifecycle" in k for k in a) and any(":x:lifecycle|value" in k for k in a)
    assert a == b, "two batch sizes count the same"
    assert a == worker, "the live worker counts what a replay counts"
    days = {k: v for k, v in a.items() if ":d:" in k or ":r:" in k}
    metrics = {  # names coded (day_names): d: with their weekday, r: in their year's key
        named(name)[0].split(":")[-1] if ":d:" in key else period_named(name, key[-4:]).split(":")[-2]
        for key, fields in days.items()
        for name in fields
    }
    assert {"orders", "revenue", "retained", "cohort_orders", "converted", "churned"} <= metrics
