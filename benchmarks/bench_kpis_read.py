"""Read latency of per-segment KPIs (`SegmentReader.grid_kpis`) and of a crossing, against counters as large
as `--days` of history make them: the cost depends on days x segments, never on the number of customers.

    .venv/bin/python benchmarks/bench_kpis_read.py [--days 730] [--partitions 8] [--calls 50]

Fills `d:`, `t:`, `k:` of the lifecycle and rfm grids and `x:lifecycle|value` with synthetic counters under a
fresh key prefix (SEGSTREAM_REDIS_URL, default the local Redis), prints the fields per partition and the
p50/p99 of a one-month and a whole-history call, then deletes every key it wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from datetime import date, timedelta

import redis.asyncio as aioredis

from segmentation import Definitions
from streams.read.reader import SegmentReader
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.day_names import period_field
from streams.store.weeks import split_days


async def fill(client: aioredis.Redis, reader: SegmentReader, days: int, partitions: int) -> int:
    keys = await reader.keyspace()
    first = date(2026, 1, 1)
    fields = 0
    for p in range(partitions):
        for grid in ("lifecycle", "rfm"):
            segments = reader.grids[grid]
            d: dict[str, int] = {}
            t: dict[str, int] = {}
            for n in range(days):
                day = (first + timedelta(days=n)).isoformat()
                for s in segments:
                    for metric in ("orders", "revenue", "converted", "churned"):
                        d[f"{s}:{metric}:{day}"] = 3
                for s, after in zip(segments, [*segments[1:], segments[0]], strict=True):
                    t[f"{s}>{after}:{day}"] = 2  # each segment: 2 entries and 2 exits a day
            periods: dict[str, dict[str, int]] = {}
            for n in range(0, days, 30):
                month = (first + timedelta(days=n)).isoformat()[:7]
                for s in segments:
                    for metric in ("retained", "cohort_orders", "cohort_revenue"):
                        periods.setdefault(month[:4], {})[period_field(s, metric, month)] = 5  # coded
            for week, row in split_days(d).items():
                await client.hset(keys.segment_days(p, grid, week), mapping=row)  # type: ignore[arg-type]
                await client.sadd(keys.weeks(p), week)
            for week, row in split_days(t).items():
                await client.hset(keys.moves(p, grid, week), mapping=row)  # type: ignore[arg-type]
            for year, row in periods.items():
                await client.hset(keys.segment_periods(p, grid, year), mapping=row)  # type: ignore[arg-type]
            await client.hset(keys.kpis(p, grid), mapping={f"{s}:customers": 1000 for s in segments})
            fields = max(fields, len(d) + sum(len(row) for row in periods.values()))
        cells = {f"{a}|{b}:customers": 7 for a in reader.grids["lifecycle"] for b in reader.grids["value"]}
        await client.hset(keys.crosstab(p, "lifecycle|value"), mapping=cells)  # type: ignore[arg-type]
    return fields


async def timed(calls: int, action: object) -> tuple[float, float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await action()  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    prefix = f"bench-kpis-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        redis_url=os.environ.get("SEGSTREAM_REDIS_URL", "redis://127.0.0.1:6379/0"),
        key_prefix=prefix,
        namespace="main",
        topic_partitions=args.partitions,
    )
    client = async_client(settings.redis_url)
    reader = SegmentReader(client, settings, Definitions.default())
    try:
        fields = await fill(client, reader, args.days, args.partitions)
        month = (date(2026, 3, 1), date(2026, 3, 31))
        one = await timed(args.calls, lambda: reader.grid_kpis("lifecycle", *month))
        rfm = await timed(args.calls, lambda: reader.grid_kpis("rfm", *month))
        whole = await timed(args.calls, lambda: reader.grid_kpis("lifecycle"))
        cross = await timed(args.calls, lambda: reader.crosstab("lifecycle", "value"))
        print(
            f"{args.days} days, {args.partitions} partitions: up to {fields} d: fields per grid and partition"
        )
        for name, (p50, p99) in (
            ("lifecycle kpis, one month", one),
            ("rfm kpis (11 segments), one month", rfm),
            ("lifecycle kpis, whole history", whole),
            ("crosstab lifecycle x value", cross),
        ):
            print(f"  {name:<36} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
    finally:
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            await client.unlink(key)
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
