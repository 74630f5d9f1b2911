"""How long a KPI / sizes-over-time read holds Redis's other clients (worker commits, API reads).

    .venv/bin/python benchmarks/bench_snapshot_hold.py [--partitions 64] [--weeks 78] [--rounds 7]
        [--baseline DIR]

Writes `--partitions` x `--weeks` week hashes (60 fields each) under a fresh key prefix, then, in rounds,
reads them all with `streams.read.snapshot.week_snapshot` (the read behind `/grids/{grid}/sizes` and `/kpis`)
while a second process PINGs Redis in a loop. Per round: the read's wall time, and the worst PING latency
seen inside the read's window: how long another client waited behind it. An idle window of the same
length gives the floor (the box's own noise). `--baseline DIR` runs DIR's snapshot module in alternate
rounds (an older checkout: `git archive <rev> | tar -x -C DIR`). Medians; every key is removed at the end.
Uses SEGSTREAM_REDIS_URL when set, else the local stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "--child" not in sys.argv:  # a child reads with the checkout its PYTHONPATH names (--baseline)
    sys.path.insert(0, str(ROOT))

from benchmarks.before_after import load_average, side_by_side  # noqa: E402
from benchmarks.machine import describe  # noqa: E402

FIELDS = 60
PINGER = """
import sys, time, redis
r = redis.Redis.from_url(sys.argv[1])
with open(sys.argv[2], "w") as out:
    while True:
        t = time.time(); r.ping(); out.write(f"{t} {time.time() - t}\\n"); out.flush()
"""


def redis_url() -> str:
    url = os.environ.get("SEGSTREAM_REDIS_URL")
    if url:
        return url
    from streams import devstack

    return str(devstack.up().config.redis_url)


def week_names(count: int) -> list[str]:
    return [f"{2020 + n // 52}-W{n % 52 + 1:02d}" for n in range(count)]


async def fill(url: str, prefix: str, partitions: int, weeks: int) -> None:
    from streams.store.connection import async_client
    from streams.store.keys import KeySpace
    from streams.store.weeks import FORMAT, FORMAT_FIELD

    client, keys = async_client(url), KeySpace(prefix, "main", "events")
    names = week_names(weeks)
    async with client.pipeline(transaction=False) as pipe:
        for p in range(partitions):
            pipe.hset(keys.partition_meta(p), mapping={"offset": 5, FORMAT_FIELD: FORMAT})
            pipe.sadd(keys.weeks(p), *names)
            for week in names:
                fields: dict[str | bytes | bytearray | memoryview[int] | int | float, int] = {
                    f"2020-01-0{i % 7 + 1}:s{i % 9}:m{i}": i for i in range(FIELDS)
                }
                pipe.hset(keys.moves(p, "lifecycle", week), mapping=fields)
        await pipe.execute()
    await client.aclose()


async def child(url: str, prefix: str, partitions: int, idle: bool) -> dict[str, float]:
    """One round in this checkout: the read's window (wall clock) and its duration."""
    from streams.read.snapshot import week_snapshot
    from streams.store.connection import async_client
    from streams.store.keys import KeySpace

    client, keys = async_client(url), KeySpace(prefix, "main", "events")
    await client.ping()
    started, t = time.time(), time.perf_counter()
    if idle:
        await asyncio.sleep(0.3)
    else:
        await week_snapshot(
            client, keys, range(partitions), lambda p, w: [keys.moves(p, "lifecycle", x) for x in sorted(w)]
        )
    took = time.perf_counter() - t
    await client.aclose()
    return {"start": started, "end": time.time(), "read_ms": took * 1e3}


def run_child(source: Path, args: argparse.Namespace, prefix: str, idle: bool) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(source), SEGSTREAM_REDIS_URL=args.url)
    argv = [sys.executable, __file__, "--child", prefix, "--partitions", str(args.partitions)]
    out = subprocess.run([*argv, *(["--idle"] if idle else [])], env=env, cwd=source, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return dict(json.loads(out.strip().splitlines()[-1]))


def worst_wait(samples: list[tuple[float, float]], window: dict[str, float]) -> float:
    """The longest PING issued inside the window (ms)."""
    inside = [lat for t, lat in samples if window["start"] <= t <= window["end"]]
    return max(inside, default=0.0) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--weeks", type=int, default=78)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--child")
    parser.add_argument("--idle", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(os.environ["SEGSTREAM_REDIS_URL"], args.child, args.partitions,
                                           args.idle))))  # fmt: skip
        return
    args.url = redis_url()
    prefix = f"bench-hold-{uuid.uuid4().hex[:8]}"
    print(describe())
    print(f"{args.partitions} partitions x {args.weeks} weeks, {FIELDS} fields a week hash; {load_average()}")
    asyncio.run(fill(args.url, prefix, args.partitions, args.weeks))
    log = Path(tempfile.mkstemp(suffix=".pings")[1])
    pinger = subprocess.Popen([sys.executable, "-c", PINGER, args.url, str(log)])
    try:
        time.sleep(1.0)
        variants = {"idle": [], "after": [], "before": []}  # type: dict[str, list[dict[str, float]]]
        for _ in range(args.rounds):
            variants["idle"].append(run_child(ROOT, args, prefix, idle=True))
            variants["after"].append(run_child(ROOT, args, prefix, idle=False))
            if args.baseline:
                variants["before"].append(run_child(args.baseline, args, prefix, idle=False))
    finally:
        pinger.kill()
        pinger.wait()
    samples = [
        (float(a), float(b))
        for a, b in (line.split() for line in log.read_text().splitlines() if " " in line)
    ]
    log.unlink()
    rows = {
        name: [
            {"read ms": w["read_ms"], "worst wait of another client, ms": worst_wait(samples, w)} for w in ws
        ]
        for name, ws in variants.items()
    }
    floor = statistics.median(r["worst wait of another client, ms"] for r in rows["idle"])
    print(f"idle window (the floor): worst wait {floor:.1f} ms")
    if args.baseline:
        print("\n".join(side_by_side(rows["before"], rows["after"], ("before", "after"))))
    else:
        print("\n".join(side_by_side(rows["after"], rows["after"], ("after", "after"))))
    asyncio.run(clean(args.url, prefix))


async def clean(url: str, prefix: str) -> None:
    from streams.store.connection import async_client

    client = async_client(url)
    async for key in client.scan_iter(f"{prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()


if __name__ == "__main__":
    main()
