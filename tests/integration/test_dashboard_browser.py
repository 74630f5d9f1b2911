"""The dashboard and the report in headless Chromium (Debian's package, driven by Playwright), against a real
`segstream api` process over a real Redis filled by a replay of generated sample data.

Every figure a chart or table shows is read from the page and compared with the API's JSON for the same
URL; the browser console must stay free of errors; screenshots of each page go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from segmentation import Definitions
from streams.devstack.chromium import binary as chromium_binary
from streams.read.auth import new_key
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import sync_client
from tests.integration.api_server import free_port
from tests.integration.replay_helpers import replay_file
from tests.services import Services

playwright = pytest.importorskip("playwright.sync_api")

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "dashboard"
NAMESPACE = "dash"
CANDIDATE_AT_RISK_DAYS = 60  # the candidate file moves at_risk earlier: some active customers would move

DEFAULT_VERSION = Definitions.default().version


@dataclass(frozen=True)
class World:
    settings: Settings
    base: str
    token: str
    segments_only: str
    chromium: str
    tmp: Path

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path)
        request.add_header("Authorization", f"Bearer {token or self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, orjson.loads(exc.read())

    def post(self, path: str, body: bytes) -> Any:
        request = urllib.request.Request(self.base + path, data=body, method="POST")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/yaml")
        with urllib.request.urlopen(request, timeout=60) as response:
            return orjson.loads(response.read())


@pytest.fixture(scope="module")
def world(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    chromium = chromium_binary()  # installs Debian's chromium when missing (root)
    tmp = tmp_path_factory.mktemp("dashboard")
    prefix = f"test:{uuid.uuid4().hex[:12]}"
    settings = Settings(
        redis_url=services.redis_url,
        kafka_bootstrap=services.kafka_bootstrap,
        key_prefix=prefix,
        namespace=NAMESPACE,
        topic_partitions=4,
    )
    events = tmp / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=400, days=240, seed=11, erasure_share=0.01), events)
    asyncio.run(replay_file(settings, events, NAMESPACE, tmp))
    token, line = new_key("all", ["segments:read", "profiles:read", "members:read"])
    seg_token, seg_line = new_key("seg", ["segments:read"])
    port = free_port()
    env = settings.as_environment()
    env["SEGSTREAM_API_KEYS"] = f"{line};{seg_line}"
    log = (tmp / "api.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.read.api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    world = World(settings, f"http://127.0.0.1:{port}", token, seg_token, chromium, tmp)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if world.get("/health")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, (tmp / "api.log").read_text()
            time.sleep(0.1)
        yield world
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        client = sync_client(services.redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()


@pytest.fixture
def browser(world: World) -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=world.chromium, args=["--no-sandbox"])
        try:
            yield instance
        finally:
            instance.close()


def watched(browser: Any) -> tuple[Any, list[str]]:
    """A page whose console errors and uncaught exceptions are collected."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return page, problems


def until(page: Any, expression: str, timeout_s: float = 15.0) -> None:
    """Poll a JavaScript expression until true (Playwright's wait_for_function evaluates a string, which the
    page's Content-Security-Policy forbids, rightly; page.evaluate goes through the debugger protocol)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {expression}"
        page.wait_for_timeout(50)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # the last chart frame
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def money_text(money: dict[str, str] | None) -> str:
    if money is None:
        return "—"
    sign, digits = ("-", money["amount"][1:]) if money["amount"].startswith("-") else ("", money["amount"])
    whole, _, frac = digits.partition(".")
    return sign + f"{int(whole):,}" + (f".{frac}" if frac else "") + " " + money["currency"]


def percent_text(value: float | None) -> str:
    """As the page's Intl.NumberFormat("en-US", {maximumFractionDigits: 2}) of value * 100, then " %"."""
    return "—" if value is None else decimal_text(value * 100) + " %"


def decimal_text(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}".rstrip("0").rstrip(".")


def login(page: Any, world: World) -> None:
    page.goto(world.base + "/")
    page.fill("#key", world.token)
    page.click("#login-form button")
    page.wait_for_selector("#kpi-table")


def chart_series(page: Any, chart: str) -> list[dict[str, Any]]:
    series: list[dict[str, Any]] = page.evaluate(
        f"window.segstreamCharts['{chart}'].getOption().series.map(s => ({{name: s.name, data: s.data}}))"
    )
    return series


def overview_figures(page: Any) -> dict[str, Any]:
    """What the segments view shows: the sizes chart's series, the heatmap's cells, the KPI table's text."""
    sizes = {s["name"]: s["data"] for s in chart_series(page, "chart-sizes")}
    moves = sorted((d[3], d[4], d[2]) for d in chart_series(page, "chart-moves")[0]["data"])
    table = page.evaluate(
        """[...document.querySelectorAll('#kpi-table tbody tr')].map(tr => [tr.dataset.segment,
           Object.fromEntries([...tr.querySelectorAll('td[data-field]')].map(td => [td.dataset.field,
           td.textContent]))])"""
    )
    days = page.evaluate("window.segstreamCharts['chart-sizes'].getOption().xAxis[0].data")
    title = page.text_content("#kpi-period")
    return {"sizes": sizes, "moves": moves, "kpis": dict(table), "days": days, "period_title": title}


def crosstab_figures(page: Any) -> dict[str, Any]:
    """The crosstab heatmap as drawn: axes, and per cell (row, column) its customers and the texts shown."""
    option = page.evaluate(
        """(() => { const o = window.segstreamCharts['chart-crosstab'].getOption();
           return {rows: o.yAxis[0].data, columns: o.xAxis[0].data, rows_name: o.yAxis[0].name,
                   columns_name: o.xAxis[0].name, data: o.series[0].data}; })()"""
    )
    cells = {(d[3], d[4]): d[2:3] + d[5:9] for d in option.pop("data")}
    return {**option, "cells": cells}


def check_crosstab(world: World, page: Any, rows: str, columns: str) -> None:
    """Every cell of the heatmap is the API's `GET /crosstab/{rows}/{columns}` cell, in the API's order."""
    status, answer = world.get(f"/crosstab/{rows}/{columns}")
    assert status == 200 and answer["rows"] == rows and answer["columns"] == columns
    shown = crosstab_figures(page)
    assert (shown["rows_name"], shown["columns_name"]) == (rows, columns)
    assert shown["rows"] == list(answer["cells"]) == world.get("/grids")[1][rows]
    assert shown["columns"] == list(next(iter(answer["cells"].values())))
    expected = {
        (r, c): [
            cell["customers"],
            f"{cell['orders']:,}",
            money_text(cell["revenue"]),
            money_text(cell["average_basket"]),
            f"{cell['customers']:,}\n{money_text(cell['revenue'])}",
        ]
        for r, row in answer["cells"].items()
        for c, cell in row.items()
    }
    assert shown["cells"] == expected
    assert sum(cell[0] for cell in expected.values()) > 0


def kpis_segments(world: World, grid: str) -> list[str]:
    segments: list[str] = world.get("/grids")[1][grid]
    return segments


def check_against_api(world: World, grid: str, start: str, end: str, shown: dict[str, Any]) -> None:
    status, sizes = world.get(f"/grids/{grid}/sizes?from={start}&to={end}")
    assert status == 200
    assert shown["days"] == sizes["days"] and shown["sizes"] == sizes["sizes"]
    _, moves = world.get(f"/grids/{grid}/moves?from={start}&to={end}")
    assert shown["moves"] == sorted((f, t, n) for f, t, n in moves["cells"]) and moves["total"] > 0
    # /flows (derived per day from the same moves, weeks.flows_of_moves) agrees with the range matrix:
    # exits per row, entries per column
    _, flows = world.get(f"/grids/{grid}/flows")
    days = [d for d in flows["days"] if start <= d <= end]
    for segment in kpis_segments(world, grid):
        out = sum(flows["days"][d].get(segment, {}).get("out", 0) for d in days)
        into = sum(flows["days"][d].get(segment, {}).get("in", 0) for d in days)
        assert sum(n for f, _, n in moves["cells"] if f == segment) == out
        assert sum(n for _, t, n in moves["cells"] if t == segment) == into
    _, kpis = world.get(f"/grids/{grid}/segments")
    status, period = world.get(f"/grids/{grid}/kpis?from={start}&to={end}")
    assert status == 200 and (period["first_day"], period["last_day"]) == (start, end)
    assert period["periods"], "the ranges tested hold at least one whole month: retention is shown"
    cohort = period["periods"][-1]["segments"]
    expected = {
        segment: {
            "customers": f"{k['customers']:,}",
            "revenue": money_text(k["revenue"]),
            "orders": f"{k['orders']:,}",
            "average_basket": money_text(k["average_basket"]),
            "period_orders": f"{period['segments'][segment]['orders']:,}",
            "period_revenue": money_text(period["segments"][segment]["revenue"]),
            "revenue_share": percent_text(period["segments"][segment]["revenue_share"]),
            "period_average_basket": money_text(period["segments"][segment]["average_basket"]),
            "conversion": percent_text(period["segments"][segment]["conversion"]),
            "churn_rate": percent_text(period["segments"][segment]["churn_rate"]),
            "retention": percent_text(cohort[segment]["retention"]),
            "purchase_frequency": decimal_text(cohort[segment]["purchase_frequency"]),
        }
        for segment, k in kpis["segments"].items()
    }
    assert shown["kpis"] == expected
    # not vacuous: the period's KPIs carry figures, not only dashes
    for field in ("revenue_share", "conversion", "retention", "purchase_frequency"):
        assert any(row[field] != "—" for row in expected.values()), field
    assert shown["period_title"] == (
        f"period {start} to {end}; retention, frequency: {period['periods'][-1]['period']}"
    )


def test_dashboard_pages_show_the_apis_figures(world: World, browser: Any) -> None:
    page, problems = watched(browser)
    login(page, world)
    until(page, "window.segstreamCharts['chart-moves'] !== undefined")
    start, end = page.input_value("#from"), page.input_value("#to")
    check_against_api(world, "lifecycle", start, end, overview_figures(page))
    # the sizes are consistent with today's counts: the last day of the full range is today's count
    _, kpis = world.get("/grids/lifecycle/segments")
    sizes = overview_figures(page)["sizes"]
    assert {s: v[-1] for s, v in sizes.items()} == {s: k["customers"] for s, k in kpis["segments"].items()}
    assert sum(v[0] for v in sizes.values()) < sum(v[-1] for v in sizes.values())
    shot(page, "segments-lifecycle")

    # another grid and a narrower period: the page follows, the figures still match
    page.select_option("#grid", "rfm")
    page.fill("#from", "2026-05-01")
    page.dispatch_event("#from", "change")
    page.fill("#to", "2026-06-30")
    page.dispatch_event("#to", "change")
    until(page, "document.querySelector('#moves-title').textContent.includes('2026-06-30')")
    until(page, "document.querySelector('#kpi-table tr[data-segment=champions]') !== null")
    check_against_api(world, "rfm", "2026-05-01", "2026-06-30", overview_figures(page))
    shot(page, "segments-rfm")

    # members of a segment, then one of them on the customer page
    page.click("#kpi-table tr[data-segment=champions] a")
    page.wait_for_selector("#members li a")
    _, members = world.get("/grids/rfm/segments/champions/members?count=100")
    assert (
        page.eval_on_selector_all("#members li a", "as => as.map(a => a.textContent)") == members["members"]
    )
    customer = members["members"][0]
    page.click("#members li a")
    page.wait_for_selector("#customer-segments")
    _, profile = world.get(f"/customers/{customer}")
    _, history = world.get(f"/customers/{customer}/history")
    shown = dict(
        page.evaluate(
            """[...document.querySelectorAll('#customer-segments tbody tr')].map(tr => [tr.dataset.grid,
               tr.querySelector('[data-field=segment]').textContent])"""
        )
    )
    assert shown == {g: s or "—" for g, s in profile["segments"].items()}
    assert shown["rfm"] == "champions"
    assert page.locator("#customer-history tbody tr").count() == len(history["entries"])
    timeline = chart_series(page, "chart-timeline")[0]["data"]
    assert [(d[0], d[1], d[2]) for d in timeline] == [
        (e["effective_at"], e["grid"], e["to_segment"]) for e in history["entries"]
    ]
    why_rfm = page.locator("#customer-segments tr[data-grid=rfm] td.why").text_content() or ""
    last_rfm = [e for e in history["entries"] if e["grid"] == "rfm"][-1]  # the move into champions
    assert history["why"]["rfm"] == last_rfm["why"]  # the current segment's why, derived from the state
    assert why_rfm == ", ".join(f"{k}={v}" for k, v in history["why"]["rfm"].items()) and why_rfm
    shot(page, "customer")

    # definitions: the versions, and who a candidate file would move
    candidate = world.tmp / "candidate.yaml"
    text = (Path(__file__).parents[2] / "segmentation" / "definitions.yaml").read_text(encoding="utf-8")
    candidate.write_text(
        text.replace(f'version: "{DEFAULT_VERSION}"', 'version: "candidate-1"', 1).replace(
            "at_risk_after_days: 90", f"at_risk_after_days: {CANDIDATE_AT_RISK_DAYS}", 1
        ),
        encoding="utf-8",
    )
    page.goto(world.base + "/#definitions")
    page.wait_for_selector("#definitions-info")
    assert page.text_content("#definitions-info [data-field=served]") == DEFAULT_VERSION
    page.set_input_files("#candidate", str(candidate))
    page.click("#preview")
    page.wait_for_selector("#preview-summary")
    answer = world.post("/definitions/preview?limit=20000", candidate.read_bytes())
    assert answer["complete"] and answer["examined"] == answer["total"] > 0
    assert answer["moved"]["lifecycle"] > 0
    # the same moves as `segstream definitions diff` (every customer read by the CLI)
    diff_file = world.tmp / "diff.json"
    command = [sys.executable, "-m", "streams.cli", "definitions", "diff", str(candidate)]
    result = subprocess.run(
        [*command, "--json", str(diff_file)],
        env=world.settings.as_environment(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    diff = orjson.loads(diff_file.read_bytes())
    assert diff["customers"] == answer["examined"]
    assert {
        grid: [{"from": c["from"], "to": c["to"], "customers": c["customers"]} for c in cells]
        for grid, cells in answer["grids"].items()
    } == {
        grid: [c for c in cells if c["from"] != c["to"]]
        for grid, cells in diff["grids"].items()
        if any(c["from"] != c["to"] for c in cells)
    }
    assert page.text_content("#preview-summary") == (
        f"Candidate candidate-1 vs {DEFAULT_VERSION}: {answer['examined']:,} of {answer['total']:,} customers"
        " examined (all)."
    )
    rows = page.evaluate(
        """[...document.querySelectorAll('table.preview[data-grid=lifecycle] tbody tr')].map(tr =>
           [...tr.querySelectorAll('td')].slice(0, 3).map(td => td.textContent))"""
    )
    assert rows == [[c["from"], c["to"], f"{c['customers']:,}"] for c in answer["grids"]["lifecycle"]]
    shot(page, "definitions")
    assert problems == []


def test_no_data_without_a_valid_key(world: World, browser: Any) -> None:
    page, _ = watched(browser)
    page.goto(world.base + "/")
    assert page.is_visible("#key") and not page.is_visible("#app")
    for path in ("/grids", "/grids/lifecycle/sizes", "/grids/lifecycle/moves", "/definitions"):
        assert world.get(path, token="sgs_not-a-key")[0] == 401
    page.fill("#key", "sgs_not-a-key")
    page.click("#login-form button")
    until(page, "document.querySelector('#login-error').textContent.includes('401')")
    assert not page.is_visible("#app") and page.evaluate("sessionStorage.length") == 0
    # a key without profiles:read sees the segments, and the customer page says what it lacks
    page.fill("#key", world.segments_only)
    page.click("#login-form button")
    page.wait_for_selector("#kpi-table")
    page.goto(world.base + "/#customer/c000001")
    page.wait_for_selector("#customer .error")
    assert "profiles:read" in (page.text_content("#customer .error") or "")


def segstream(*args: str, world: World) -> None:
    """The CLI in its own process (the sync Playwright driver holds this thread's event loop)."""
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env=world.settings.as_environment(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote ")


def test_report_opens_offline_with_the_dashboards_figures(world: World, browser: Any) -> None:
    output = world.tmp / "report.html"
    segstream("report", "--output", str(output), "--from", "2026-03-01", "--to", "2026-07-31", world=world)
    html = output.read_text(encoding="utf-8")
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)  # the page's own tags, not the scripts'
    assert not re.search(r"<(script|link|img)\b[^>]*\b(src|href)=\"(?!data:)", markup)  # all inline

    page, problems = watched(browser)
    requests: list[str] = []

    def deny(route: Any) -> None:
        if not route.request.url.startswith(("file:", "data:")):
            requests.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", deny)
    page.goto(output.as_uri())
    page.wait_for_selector("#kpi-table")
    until(page, "window.segstreamCharts['chart-moves'] !== undefined")
    check_against_api(world, "lifecycle", "2026-03-01", "2026-07-31", overview_figures(page))
    # the kept crossing is drawn below the KPI table (so the PDF has it too), with the API's figures
    until(page, "!!window.segstreamCharts['chart-crosstab']")
    check_crosstab(world, page, "lifecycle", "value")
    shot(page, "report")
    page.select_option("#grid", "value")
    until(page, "document.querySelector('#kpi-table tbody tr') && "
                           "window.segstreamCharts['chart-sizes'].getOption().series.length === "
                           f"{len(world.get('/grids')[1]['value'])}")  # fmt: skip
    check_against_api(world, "value", "2026-03-01", "2026-07-31", overview_figures(page))
    assert requests == [] and problems == []
    assert world.settings.namespace in (page.text_content("#namespace") or "")


def test_report_as_pdf(world: World) -> None:
    output = world.tmp / "report.pdf"
    segstream("report", "--output", str(output), "--format", "pdf", world=world)
    data = output.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 20_000


def test_the_kept_crossing_is_the_apis_and_another_pair_is_not_available(world: World, browser: Any) -> None:
    """The crosstab view draws `GET /crosstab/{a}/{b}` for the pairs `/definitions` lists as kept (either way
    round), cell by cell; a pair that is not kept is said to be not available, never drawn as zeros."""
    page, problems = watched(browser)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/crosstab/" in r.url else None)
    login(page, world)
    _, info = world.get("/definitions")
    assert info["crosstabs"] == [["lifecycle", "value"]]  # segmentation/definitions.yaml kpis.crosstabs
    assert page.is_visible("#nav-crosstab")
    page.click("#nav-crosstab")
    until(page, "!!(window.segstreamCharts['chart-crosstab'] && document.querySelector('#cross-a'))")
    until(page, "window.segstreamCharts['chart-crosstab'].getOption().series[0].data.length > 0")
    check_crosstab(world, page, "lifecycle", "value")
    assert asked == [world.base + "/crosstab/lifecycle/value"]
    shot(page, "crosstab")

    page.select_option("#cross-a", "value")
    page.select_option("#cross-b", "lifecycle")
    until(page, "window.segstreamCharts['chart-crosstab'] && "
                "window.segstreamCharts['chart-crosstab'].getOption().yAxis[0].name === 'value'")  # fmt: skip
    check_crosstab(world, page, "value", "lifecycle")

    page.select_option("#cross-a", "rfm")
    page.select_option("#cross-b", "email")
    until(page, "document.querySelector('#crosstab-note').textContent.startsWith('Not available')")
    assert page.text_content("#crosstab-note") == (
        "Not available: the crossing rfm \u00d7 email is not kept by the definitions"
        " (kpis.crosstabs: lifecycle \u00d7 value)."
    )
    assert page.evaluate("window.segstreamCharts['chart-crosstab'] === undefined")
    assert not page.is_visible("#chart-crosstab")
    assert world.get("/crosstab/rfm/email")[0] == 404  # the API has no such crossing either
    assert not any("rfm" in url for url in asked)
    shot(page, "crosstab-not-kept")
    assert problems == []
