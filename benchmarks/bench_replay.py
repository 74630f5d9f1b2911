"""File replay throughput into Redis and peak RSS at two file lengths (same population).

    .venv/bin/python benchmarks/bench_replay.py [--events 1000000] [--partitions 4] [--batch 20000]
        [--processes 1] [--compare-processes 2] [--profile]

Writes a sample JSONL.gz of --events lines (customers = events / 120, 365 days, 0.2 % malformed), then
replays it, and its first quarter, each in a fresh process into a fresh namespace of a throw-away prefix
(peak RSS = that process's ru_maxrss). The file is streamed and the worker's state cache is bounded, so peak
RSS should follow the population, not the file's length. --profile adds a cProfile run (top entries by
own time). Uses SEGSTREAM_REDIS_URL when set, else the local stack.

Each replay also prints its CPU budget: CPU-us per event of the replay process and of redis-server (read
from /proc around the replay call only), and the rate the box could reach if nothing else ran. On 2 cores
shared with Redis, that says whether Python or Redis bounds replay, independently of noisy wall time.
(redis-server's figure includes whatever else uses that server meanwhile.) With --processes N the replay
figure is the parent plus its N children (RUSAGE_CHILDREN) and peak RSS is the largest child's.
--compare-processes N also replays the full file split across N processes, interleaved with one process
over --rounds rounds, and prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe
from benchmarks.process_cpu import CpuMeter, budget_lines, cpu_seconds, stack_pids
from streams.replay.rebuild import DEFAULT_BATCH
from streams.sample import generator as sample


def redis_url() -> str:
    url = os.environ.get("SEGSTREAM_REDIS_URL")
    if url:
        return url
    from streams import devstack

    return devstack.up().config.redis_url


def redis_pid(url: str) -> int | None:
    """redis-server's pid: the local stack's, else the one Redis reports (INFO server) when it is local."""
    pid = stack_pids().get("redis")
    if pid is not None:
        return pid
    import redis

    client = redis.Redis.from_url(url)
    try:
        pid = int(client.info("server")["process_id"])
    except Exception:  # accounting is best effort: a remote or restricted Redis just goes unmeasured
        return None
    finally:
        client.close()
    return pid if cpu_seconds(pid) is not None else None


def child(path: Path, partitions: int, batch: int, processes: int, url: str, profile: bool) -> None:
    import redis.asyncio as aioredis

    from segmentation import Definitions
    from streams.replay.rebuild import replay
    from streams.replay.sources import FileSource
    from streams.replay.split import SourceSpec, replay_split
    from streams.settings import Settings
    from streams.store.namespaces import drop

    prefix = f"bench-replay-{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=url, key_prefix=prefix, topic_partitions=partitions, namespace="bench")

    server = redis_pid(url)
    cpu: dict[str, float] = {}

    async def run() -> dict[str, float]:
        client = aioredis.Redis.from_url(url)
        meter = CpuMeter({"replay": os.getpid()} | ({"redis": server} if server else {}))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        rejects = path.with_suffix(f".{prefix}.rejects.jsonl")
        try:
            if processes > 1:
                summary = await replay_split(
                    settings,
                    client,
                    SourceSpec(path=path),
                    "bench",
                    processes=processes,
                    definitions_file=None,
                    rejects_path=rejects,
                    batch_events=batch,
                    show_progress=False,
                )
            else:
                summary = await replay(
                    settings,
                    Definitions.default(),
                    client,
                    FileSource(path, partitions),
                    "bench",
                    source_name=str(path),
                    rejects_path=rejects,
                    batch_events=batch,
                    show_progress=False,
                )
            cpu.update(meter.spent())
            after = resource.getrusage(resource.RUSAGE_CHILDREN)  # split replays' processes, joined
            cpu["replay"] += after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            await drop(client, prefix, "bench")
        finally:
            await client.aclose()
        return {
            "events": summary.events,
            "seconds": summary.elapsed_s,
            "rate": summary.events_per_s,
            "customers": summary.customers,
            "dead_letters": summary.dead_letters,
        }

    if profile:
        profiler = cProfile.Profile()
        result = profiler.runcall(asyncio.run, run())
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        result["profile"] = out.getvalue()  # type: ignore[assignment]
    else:
        result = asyncio.run(run())
    result["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if processes > 1:
        result["max_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result.update({f"cpu_{name}": seconds for name, seconds in cpu.items()})
    print(json.dumps(result))


def run_child(
    path: Path, args: argparse.Namespace, url: str, profile: bool = False, processes: int | None = None
) -> dict[str, object]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        str(path),
        "--partitions",
        str(args.partitions),
        "--batch",
        str(args.batch),
        "--processes",
        str(processes or args.processes),
    ]
    cmd += ["--profile"] if profile else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ,
                         "SEGSTREAM_REDIS_URL": url}).stdout  # fmt: skip
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def budget(result: dict[str, object]) -> list[str]:
    """CPU-us per event of each process measured by the child (see process_cpu.budget_lines)."""
    spent = {k[4:]: float(v) for k, v in result.items() if k.startswith("cpu_") and isinstance(v, float)}
    events, seconds = result["events"], result["seconds"]
    assert isinstance(events, int) and isinstance(seconds, float)
    return budget_lines(spent, events, seconds)


def _num(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)


def compare(path: Path, args: argparse.Namespace, url: str) -> None:
    """One process vs --compare-processes N on the full file, interleaved rounds, medians and ratio."""
    n = args.compare_processes
    rows: dict[int, list[dict[str, object]]] = {1: [], n: []}
    for _ in range(args.rounds):
        for processes in (1, n):
            rows[processes].append(run_child(path, args, url, processes=processes))
    print(f"\nfull file, 1 vs {n} processes, medians of {args.rounds} interleaved rounds:")
    medians = {}
    for processes, results in rows.items():
        rate = statistics.median(_num(r["rate"]) for r in results)
        per_event = {
            name: statistics.median(
                float(str(r[f"cpu_{name}"])) * 1e6 / float(str(r["events"])) for r in results
            )
            for name in ("replay", "redis")
            if all(f"cpu_{name}" in r for r in results)
        }
        rss = max(_num(r["max_rss_mib"]) for r in results)
        medians[processes] = rate
        cpu = ", ".join(f"{name} {us:.1f}" for name, us in per_event.items())
        print(
            f"  {processes} process(es): {rate:>9,.0f} events/s  CPU-us/event {cpu}  peak RSS {rss:.0f} MiB"
        )
    print(f"  ratio {n}/1: {medians[n] / medians[1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--compare-processes", type=int, default=0, metavar="N")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--child")
    args = parser.parse_args()
    url = redis_url()
    if args.child:
        child(Path(args.child), args.partitions, args.batch, args.processes, url, args.profile)
        return
    print(f"machine: {describe()}")
    customers = max(1, args.events // 120)
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {"full": args.events, "quarter": max(1, args.events // 4)}
        paths = {}
        for name, n in sizes.items():
            spec = sample.SampleSpec(customers=customers, days=365, seed=11, malformed_share=0.002, limit=n)
            paths[name] = Path(tmp) / f"{name}.jsonl.gz"
            started = time.monotonic()
            sample.write_jsonl(spec, paths[name])
            print(
                f"{name}: {n:,} lines ({customers:,} customers), written in {time.monotonic() - started:.1f}s"
            )
        for name in ("quarter", "full"):
            r = run_child(paths[name], args, url)
            print(
                f"replay {name:>8}: {r['events']:>10,} events, {r['customers']:,} customers,"
                f" {r['dead_letters']:,} dead letters: {r['seconds']:.1f}s = {r['rate']:,.0f} events/s,"
                f" peak RSS {r['max_rss_mib']:.0f} MiB"
            )
            print("\n".join(budget(r)))
        if args.compare_processes > 1:
            compare(paths["full"], args, url)
        if args.profile:
            r = run_child(paths["quarter"], args, url, profile=True)
            print(f"\ncProfile of the quarter replay ({r['rate']:,.0f} events/s under the profiler):")
            print(r["profile"])


if __name__ == "__main__":
    main()
