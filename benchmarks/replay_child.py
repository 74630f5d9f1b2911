"""One measured file replay in a fresh process (bench_replay.py's child): prints its figures as JSON.

    python benchmarks/replay_child.py FILE [--partitions 4] [--batch 0] [--processes 1] [--cprofile]
        [--source CHECKOUT]

A separate process per replay so peak RSS (ru_maxrss) is the replay's own, and so `--source` can import
`streams`/`segmentation` from another checkout (the --baseline of bench_replay.py): nothing of them is
imported before the arguments are read. CPU is read from /proc around the replay call only; the customer
ids and the Redis memory (benchmarks/footprint.py) are taken outside that window.
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
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.footprint import Footprint, customer_ids, drop, measure
from benchmarks.process_cpu import CpuMeter, budget_lines, cpu_seconds, stack_pids

__all__ = ["budget", "footprint_of", "num", "redis_url", "run_child"]


def redis_url() -> str:
    url = os.environ.get("SEGSTREAM_REDIS_URL")
    if url:
        return url
    from streams import devstack

    return devstack.up().config.redis_url


def redis_pid(url: str, make_client: Callable[[str], Any]) -> int | None:
    """redis-server's pid: the local stack's, else the one Redis reports (INFO server) when it is local."""
    pid = stack_pids().get("redis")
    if pid is not None:
        return pid
    client = make_client(url)
    try:
        pid = int(client.info("server")["process_id"])
    except Exception:  # accounting is best effort: a remote or restricted Redis just goes unmeasured
        return None
    finally:
        client.close()
    return pid if cpu_seconds(pid) is not None else None


def _baseline_core(source: Path) -> None:
    """The baseline checkout's own mypyc build when it has one (`python -m streams.core.build` run there; one
    older than 4 December 2026 then points this venv's start-up hook at it: `make core` here after), so
    before/after compare compiled with compiled: this venv's start-up hook chose this checkout's build."""
    build = source / ".build" / "mypyc"
    if not (build / "manifest.json").exists():
        return
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_CompiledCore"]
    from streams.core import choice  # the baseline's (the start-up hook dropped this checkout's `streams`)

    choice.choose(str(build), str(source / "segmentation"))


def use_checkout(source: Path) -> None:
    """Run the rest of this process with the code of `source` (another checkout): this checkout's
    `segmentation` and `streams` are dropped, `source` comes first on the path, with its own compiled core."""
    for name in [m for m in sys.modules if m.split(".")[0] in ("segmentation", "streams")]:
        del sys.modules[name]
    sys.path.insert(0, str(source))
    _baseline_core(source)


def child(path: Path, args: argparse.Namespace, url: str) -> None:
    """One replay in this process, with the code of `args.source` (a checkout) when given; prints JSON."""
    partitions, batch, processes, profile = args.partitions, args.batch, args.processes, args.cprofile
    if args.source:
        source = Path(args.source).resolve()
        sys.path.insert(0, str(source))
        _baseline_core(source)

    from segmentation import Definitions
    from streams.replay.rebuild import DEFAULT_BATCH, replay
    from streams.replay.sources import FileSource
    from streams.replay.split import SourceSpec, replay_split
    from streams.settings import Settings

    prefix = f"bench-replay-{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=url, key_prefix=prefix, topic_partitions=partitions, namespace="bench")

    import streams

    try:  # the checkout's client factory (a Redis Cluster URL too); a checkout from before it: single server
        from streams.store.connection import async_client, sync_client
    except ImportError:
        import redis
        import redis.asyncio as aioredis

        async_client, sync_client = aioredis.Redis.from_url, redis.Redis.from_url  # type: ignore[assignment]
    batch = batch or DEFAULT_BATCH
    server = redis_pid(url, sync_client)
    cpu: dict[str, float] = {}
    ids = customer_ids(path)  # outside the measured window, like the memory measurement
    sync = sync_client(url)
    footprint: list[Footprint] = []

    async def run() -> dict[str, float]:
        client = async_client(url)
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
            measured = drop(sync, prefix, measure(sync, prefix, ids))  # the whole prefix is throw-away
            assert measured is not None
            footprint.append(measured)
        finally:
            await client.aclose()
            sync.close()
        return {
            "events": summary.events,
            "transitions": sum(summary.transitions.values()),
            "seconds": summary.elapsed_s,
            "rate": summary.events_per_s,
            "customers": summary.customers,
            "dead_letters": summary.dead_letters,
        }

    if profile:
        profiler = cProfile.Profile()
        result = profiler.runcall(asyncio.run, run())
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)  # which step of the batch the time is under
        result["profile"] = out.getvalue()  # type: ignore[assignment]
    else:
        result = asyncio.run(run())
    result["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if processes > 1:
        result["max_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result.update({f"cpu_{name}": seconds for name, seconds in cpu.items()})
    result["footprint"] = footprint[0].to_json()  # type: ignore[assignment]
    result["code"] = str(Path(streams.__file__).resolve().parents[1])  # type: ignore[assignment]
    print(json.dumps(result))


def run_child(
    path: Path,
    args: argparse.Namespace,
    url: str,
    profile: bool = False,
    processes: int | None = None,
    source: Path | None = None,
) -> dict[str, object]:
    """One replay of `path` in a fresh process (with the code of checkout `source` when given)."""
    cmd = [
        sys.executable,
        __file__,
        str(path),
        "--partitions",
        str(args.partitions),
        "--batch",
        str(args.batch or 0),
        "--processes",
        str(processes or args.processes),
    ]
    cmd += ["--cprofile"] if profile else []
    cmd += ["--source", str(source)] if source is not None else []
    env = {**os.environ, "SEGSTREAM_REDIS_URL": url}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:  # a shared Redis can be BUSY with another client's script: one retry, said
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  (replay child failed, run again: {last[:300]})", file=sys.stderr)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:  # the child's own error, not just its exit status
        raise SystemExit(f"replay child failed ({' '.join(cmd[1:])}):\n{done.stderr[-4000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def budget(result: dict[str, object]) -> list[str]:
    """CPU-us per event and per transition of each process measured by the child, and Redis memory."""
    spent = {k[4:]: float(v) for k, v in result.items() if k.startswith("cpu_") and isinstance(v, float)}
    events, seconds, transitions = result["events"], result["seconds"], result["transitions"]
    assert isinstance(events, int) and isinstance(seconds, float) and isinstance(transitions, int)
    lines = budget_lines(spent, events, seconds)
    per = ", ".join(f"{name} {cpu * 1e6 / max(1, transitions):.2f}" for name, cpu in spent.items())
    total = sum(spent.values()) * 1e6 / max(1, transitions)
    lines.append(
        f"  {transitions:,} transitions = {transitions / max(1, events):.2f} per event; "
        f"CPU-us/transition {per}, total {total:.2f}"
    )
    return lines + footprint_of(result).lines()


def footprint_of(result: dict[str, object]) -> Footprint:
    data = result["footprint"]
    assert isinstance(data, dict)
    return Footprint.from_json(data)


def num(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--source")
    args = parser.parse_args()
    child(args.file, args, redis_url())


if __name__ == "__main__":
    main()
