"""Dashboard cost at a large population: the aggregate endpoints and the page in Chromium, over the aggregate
keys a population of N customers leaves after a year (days x segment pairs per grid, N customers in total;
the KPI counters `d:<grid>`, every metric of every segment every day and month, and the kept crossings).

    .venv/bin/python benchmarks/bench_dashboard.py [--customers 1000000] [--days 365] [--rounds 7]

Why synthetic aggregates rather than N stored customers: the dashboard reads no customer at all (only
`k:<grid>`, `t:<grid>`, `d:<grid>`, `x:<a>|<b>`), and those hashes grow with days x segments,
not with customers; here
every (from, to) pair of every grid is non-zero every day (the worst case), counts adding up to N customers.
The preview and the customer page read customers; they are not timed here. Uses SEGSTREAM_REDIS_URL when
set, else the local stack; a fresh key prefix, removed at the end. Prints medians per endpoint (HTTP, one
`segstream api` process, loopback) and the page's time to the drawn charts and KPI table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe
from segmentation import Definitions
from segmentation.kpi_figures import DAY_METRICS, PERIOD_METRICS
from streams.devstack.chromium import binary as chromium_binary
from streams.read.auth import new_key
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.day_names import period_field
from streams.store.keys import KeySpace
from streams.store.weeks import split_days

PARTITIONS = 4
CROSS_METRICS = ("customers", "revenue_minor", "orders")


def fill(settings: Settings, customers: int, days: int) -> None:
    """Per grid and partition: every (from, to) pair every day, flows derived from them, today's counts."""
    rng = random.Random(7)
    keys = KeySpace(settings.key_prefix, str(settings.namespace), settings.events_topic)
    client = sync_client(settings.redis_url)
    first = date(2026, 1, 1)
    for grid, segments in Definitions.default().grid_segments.items():
        share = customers // PARTITIONS
        for p in range(PARTITIONS):
            moves: dict[str, int] = {}
            size = dict.fromkeys(segments, 0)
            for d in range(days):
                day = (first + timedelta(days=d)).isoformat()
                arrivals = share // days + (1 if d < share % days else 0)
                pairs = [("-", rng.choice(segments), 1) for _ in range(arrivals)]
                pairs += [(a, b, rng.randint(1, 40)) for a in segments for b in segments if a != b]
                for old, new, n in pairs:
                    if old != "-" and size[old] < n:
                        continue
                    moves[f"{old}>{new}:{day}"] = moves.get(f"{old}>{new}:{day}", 0) + n
                    if old != "-":
                        size[old] -= n
                    size[new] += n
            kpis = {f"{s}:customers": n for s, n in size.items() if n}
            counters = {
                f"{s}:{m}:{(first + timedelta(days=d)).isoformat()}": rng.randint(1, 500)
                for s in segments
                for m in DAY_METRICS
                for d in range(days)
            }
            months = sorted({(first + timedelta(days=d)).isoformat()[:7] for d in range(days)})
            periods = {
                (month, period_field(s, m, month)): rng.randint(1, 500)  # coded, in the month's year's key
                for s in segments
                for m in PERIOD_METRICS
                for month in months
            }
            stored = [(keys.kpis(p, grid), kpis)]
            for year in sorted({m[:4] for m in months}):
                row = {k: v for (month, k), v in periods.items() if month[:4] == year}
                stored.append((keys.segment_periods(p, grid, year), row))
            for kind, mapping in ((keys.moves, moves), (keys.segment_days, counters)):
                for week, row in split_days(mapping).items():
                    stored.append((kind(p, grid, week), row))
                    client.sadd(keys.weeks(p), week)
            for key, mapping in stored:
                items = list(mapping.items())
                for start in range(0, len(items), 5000):
                    client.hset(key, mapping=dict(items[start : start + 5000]))
    grids = Definitions.default().grid_segments
    for a, b in Definitions.default().kpis.crosstabs:
        cells = {
            f"{x}|{y}:{m}": rng.randint(1, 9999) for x in grids[a] for y in grids[b] for m in CROSS_METRICS
        }
        for p in range(PARTITIONS):
            client.hset(keys.crosstab(p, f"{a}|{b}"), mapping=dict(cells.items()))
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    base = Settings()
    settings = base.model_copy(
        update={
            "key_prefix": f"bench:{uuid.uuid4().hex[:8]}",
            "namespace": "dash",
            "topic_partitions": PARTITIONS,
        }
    )
    print(describe())
    started = time.perf_counter()
    fill(settings, args.customers, args.days)
    print(f"filled the aggregate keys of {args.customers:,} customers x {args.days} days in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    token, line = new_key("bench", ["segments:read"])
    env = settings.as_environment()
    env["SEGSTREAM_API_KEYS"] = line
    port = 18000 + random.randint(0, 999)
    api = subprocess.Popen([sys.executable, "-m", "streams.read.api", "--port", str(port)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base_url + "/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)

        def get(path: str) -> int:
            request = urllib.request.Request(base_url + path, headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=60) as response:
                return len(response.read())

        for path in ("/grids/lifecycle/segments", "/grids/lifecycle/sizes", "/grids/lifecycle/moves",
                     "/grids/rfm/sizes", "/grids/rfm/moves?from=2026-10-01&to=2026-12-31",
                     "/grids/lifecycle/kpis?from=2026-01-01&to=2026-12-31",
                     "/grids/rfm/kpis?from=2026-10-01&to=2026-12-31",
                     "/crosstab/lifecycle/value"):  # fmt: skip
            times = []
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                size = get(path)
                times.append(time.perf_counter() - t0)
            print(f"GET {path:48} median {statistics.median(times) * 1000:7.1f} ms  ({size:,} bytes)")
        page_load(base_url, token, args.rounds)
    finally:
        api.terminate()
        api.wait(10)
        client = sync_client(settings.redis_url)
        found = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
        for start in range(0, len(found), 500):
            client.delete(*found[start : start + 500])
        client.close()


def page_load(base_url: str, token: str, rounds: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_binary(), args=["--no-sandbox"])
        times, crossings = [], []
        for _ in range(rounds):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base_url + "/")
            page.evaluate(f"sessionStorage.setItem('segstream.key', {token!r})")
            t0 = time.perf_counter()
            page.goto(base_url + "/#overview")
            page.reload()
            while not page.evaluate(
                "!!(window.segstreamCharts && window.segstreamCharts['chart-moves'] && "
                "document.querySelector('#kpi-table tbody tr') && "
                "document.querySelector('#kpi-table [data-field=retention]'))"
            ):
                page.wait_for_timeout(10)
            times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            page.click("#nav-crosstab")
            while not page.evaluate(
                "!!(window.segstreamCharts['chart-crosstab'] && "
                "window.segstreamCharts['chart-crosstab'].getOption().series[0].data.length)"
            ):
                page.wait_for_timeout(10)
            crossings.append(time.perf_counter() - t0)
            page.close()
        browser.close()
    print(f"page (lifecycle, full year) to charts + KPI table drawn: median {statistics.median(times):.2f} s")
    print(f"crosstab view (lifecycle x value) to heatmap drawn: median {statistics.median(crossings):.2f} s")


if __name__ == "__main__":
    main()
