"""Many workers in one consumer group: CPU per event, per-worker overhead and rebalance cost, 1 to 8 workers.

    .venv/bin/python benchmarks/bench_scale.py [--workers 1,2,4,8] [--partitions 16] [--events 200000]
        [--rounds 2] [--profile order-history [--customers 23500]] [--rate 1000]
        [--triggers join,leave,rejoin,kill | --no-rebalance] [--json PATH]

This box has 2 cores, shared with the broker and Redis, so adding workers cannot add events/s here; what it
can show is that the CPU every process spends per event does not grow with the number of workers. For each
N and round: a fresh --partitions events topic and key prefix, N `segstream worker` processes (replay mode,
as bench_worker.py) in one consumer group. Once the group is stable and the topic still empty, their idle CPU
over --idle-s is the fixed cost of a worker; then the same pre-generated events (bench_worker.py's engagement
sample, or --profile order-history) are produced, and from the end of production to the last event applied
the CPU of every worker, of redis-server and of the broker is read from /proc (benchmarks/process_cpu.py):
events/s and CPU-us per event, medians over --rounds. Redis and the broker may serve other clients too: their
CPU per second over the idle window (the background) is subtracted from theirs over the measured window.
The Ns alternate within a round, so load drift on the shared box hits them alike. The workers are stopped
(SIGSTOP) while the events are produced, so all of them start on the backlog at once.

Rebalance cost (once per N, after its last round, same group): events are produced at a steady --rate, then
one worker joins, one leaves gracefully (SIGTERM), one joins again and one is killed (SIGKILL); after each,
until the lag has been back to normal for --hold-s, the applied offsets in Redis are sampled every 50 ms
(benchmarks/rebalance_timeline.py: group pause, longest partition pause, recovery time). Workers, keys and
topics are removed at the end. Uses SEGSTREAM_KAFKA_BOOTSTRAP / SEGSTREAM_REDIS_URL when set, else the
local stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.before_after import load_average
from benchmarks.bench_worker import (
    drop_keys,
    fresh_settings,
    order_history,
    service_pids,
    services,
)
from benchmarks.machine import describe
from benchmarks.process_cpu import CpuMeter
from benchmarks.rebalance_run import TRIGGERS, rebalance
from benchmarks.rebalance_timeline import Cost
from benchmarks.soak_worker import delete_topics
from benchmarks.worker_group import Frozen, Group, send_backlog, wait_stable
from streams.bootstrap import ensure_topics, keyspace
from streams.sample import generator as sample
from streams.store.connection import sync_client
from streams.store.redis_store import applied_events


@dataclass(frozen=True)
class Round:
    workers: int
    rate: float
    events: int
    seconds: float
    cpu: dict[str, float]  # CPU seconds over the window: "workers" (sum), "redis", "kafka"
    per_worker: list[float]  # CPU seconds of each worker over the window
    idle: list[float]  # CPU seconds per second of each worker, idle with the group stable
    background: dict[str, float]  # CPU seconds per second of redis and kafka meanwhile (other clients)

    def per_event(self, name: str) -> float:
        """CPU-us per event of a process; for a shared service, net of its background over the window."""
        spent = self.cpu.get(name, 0.0) - self.background.get(name, 0.0) * self.seconds
        return max(0.0, spent) * 1e6 / self.events


def measure_round(
    n: int,
    base_url: tuple[str, str],
    partitions: int,
    records: list[tuple[bytes | None, bytes]],
    client: redis.Redis,
    pids: dict[str, int],
    idle_s: float,
    then: Callable[[Group], Any] | None = None,
    keep_logs: Path | None = None,
) -> tuple[Round, Any]:
    """One round for N workers on a fresh topic and prefix; `then(group)` runs before the teardown. The
    workers' logs go to `keep_logs`/<prefix> when given, else to a directory removed at the end."""
    base = fresh_settings(*base_url, partitions, kind="scale")
    tag = f"scale-{uuid.uuid4().hex[:8]}"
    settings = base.model_copy(update={"key_prefix": tag, "group_id": tag, "progress_interval_s": 0.0})
    asyncio.run(ensure_topics(settings))
    keys = keyspace(settings)
    with tempfile.TemporaryDirectory() as scratch:
        logs = scratch if keep_logs is None else str(keep_logs / tag)
        Path(logs).mkdir(parents=True, exist_ok=True)
        group = Group(settings, Path(logs))
        try:
            for _ in range(n):
                group.spawn()
            wait_stable(group, client, n)
            idle = CpuMeter({**{f"w{i}": p.pid for i, p in enumerate(group.procs)}, **pids})
            time.sleep(idle_s)
            background = {name: s / idle_s for name, s in idle.spent().items()}
            idle_cpu = [background.pop(f"w{i}", 0.0) for i in range(n)]
            with Frozen(group.procs) as frozen:
                asyncio.run(send_backlog(settings, records, frozen.breathe))
                done = applied_events(client, keys, partitions)  # the window starts as they resume
                meter = CpuMeter({**{f"w{i}": p.pid for i, p in enumerate(group.procs)}, **pids})
                start = time.monotonic()
            while applied_events(client, keys, partitions) < len(records):
                if len(group.alive()) < n:
                    raise SystemExit(f"a worker exited early; see {logs}")
                time.sleep(0.01)
            seconds = time.monotonic() - start
            spent = meter.spent()
            per_worker = [spent.pop(f"w{i}", 0.0) for i in range(n)]
            events = len(records) - done
            result = Round(
                n,
                events / seconds,
                events,
                seconds,
                {"workers": sum(per_worker), **spent},
                per_worker,
                idle_cpu,
                background,
            )
            extra = then(group) if then is not None else None
        finally:
            group.stop()
            drop_keys(client, settings.key_prefix)
            asyncio.run(delete_topics(settings))
    return result, extra


def _pause(costs: dict[str, Cost], name: str, partition: bool = False) -> str:
    if name not in costs:
        return "-"
    c = costs[name]
    return f"{c.partition_pause if partition else c.group_pause:.1f} s / {c.recovery:.1f} s"


def table(rounds: dict[int, list[Round]], costs: dict[int, dict[str, Cost]]) -> list[str]:
    """The markdown table of docs/capacity.md: medians over the rounds, ratios to the fewest workers."""
    head = (
        "| workers | events/s | CPU-µs/event: workers | Redis | Kafka | total | total vs "
        f"{min(rounds)} | idle CPU per worker | join: pause / normal after | graceful leave | SIGKILL: "
        "partition pause / normal after |"
    )
    out = [head, "|" + "---:|" * 11]
    base = None
    for n, runs in sorted(rounds.items()):
        rate = statistics.median(r.rate for r in runs)
        per = {k: statistics.median(r.per_event(k) for r in runs) for k in ("workers", "redis", "kafka")}
        total = statistics.median(sum(r.per_event(k) for k in r.cpu) for r in runs)
        base = base or total
        idle = statistics.median(i for r in runs for i in r.idle) * 1000
        c = costs.get(n, {})
        out.append(
            f"| {n} | {rate:,.0f} | {per['workers']:.1f} | {per['redis']:.1f} | {per['kafka']:.1f} | "
            f"{total:.1f} | {total / base:.2f}x | {idle:.0f} ms/s | "
            f"{_pause(c, 'join')} | {_pause(c, 'leave')} | "
            f"{_pause(c, 'kill', partition=True)} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts, comma-separated")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--events", type=int, default=200_000, help="approximate size of the topic")
    parser.add_argument("--events-per-customer", type=int, default=120)
    parser.add_argument("--profile", choices=("default", "order-history"), default="default")
    parser.add_argument("--customers", type=int, default=23_500, help="order-history: the population")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--idle-s", type=float, default=3.0, help="idle CPU window, group stable")
    parser.add_argument("--rate", type=float, default=1000.0, help="steady load of the rebalance test")
    parser.add_argument("--hold-s", type=float, default=5.0, help="normal lag this long: settled")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="give up on one trigger after this")
    parser.add_argument("--triggers", default=",".join(TRIGGERS), help="rebalance triggers, in order")
    parser.add_argument("--no-rebalance", dest="rebalance", action="store_false")
    parser.add_argument("--json", type=Path, help="write every round and rebalance cost here")
    parser.add_argument("--logs", type=Path, help="keep the workers' logs under this directory")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    triggers = tuple(args.triggers.split(","))
    if not set(triggers) <= set(TRIGGERS):
        parser.error(f"--triggers: each one of {', '.join(TRIGGERS)}")
    bootstrap, url = services()
    pids = service_pids(bootstrap, url)
    spec = (
        order_history(args.customers)
        if args.profile == "order-history"
        else sample.SampleSpec(
            customers=max(1, args.events // args.events_per_customer),
            days=365,
            seed=11,
            malformed_share=0.002,
        )
    )
    records = list(sample.keyed(spec))
    print(f"machine: {describe()}; {load_average()}")
    print(
        f"topic: {len(records):,} events ({spec.customers:,} customers, profile {spec.profile}), "
        f"{args.partitions} partitions; CPU accounted for: workers, {', '.join(pids) or 'nothing else'}",
        flush=True,
    )
    client = sync_client(url)
    rounds: dict[int, list[Round]] = {n: [] for n in counts}
    costs: dict[int, dict[str, Cost]] = {}
    loads: list[str] = []
    for i in range(args.rounds):
        for n in counts:
            last = i == args.rounds - 1 and args.rebalance
            then = (
                (lambda g: rebalance(g, client, args.rate, args.hold_s, args.timeout_s, triggers))
                if last
                else None
            )
            if last:
                print(f"  {n} workers, rebalance under {args.rate:,.0f} events/s:", flush=True)
            run, extra = measure_round(
                n, (bootstrap, url), args.partitions, records, client, pids, args.idle_s, then, args.logs
            )
            rounds[n].append(run)
            if extra is not None:
                costs[n] = extra
            loads.append(load_average())
            cpu = ", ".join(f"{k} {run.per_event(k):.1f}" for k in run.cpu)
            print(
                f"  {n} workers round {i + 1}: {run.rate:,.0f} events/s over {run.events:,} events; "
                f"CPU-us/event {cpu}; idle {statistics.median(run.idle) * 1000:.0f} ms/s per worker; "
                f"background {', '.join(f'{k} {v:.2f}' for k, v in run.background.items())} cores; "
                f"{loads[-1]}",
                flush=True,
            )
    print(f"\nmedians of {args.rounds} rounds; {load_average()}")
    print("\n".join(table(rounds, costs)))
    if args.json is not None:
        data = {
            "machine": describe(),
            "argv": sys.argv[1:],
            "load_averages": loads,
            "rounds": {n: [r.__dict__ for r in runs] for n, runs in rounds.items()},
            "rebalance": {n: {k: c.to_json() for k, c in v.items()} for n, v in costs.items()},
        }
        args.json.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
