"""Events/s and CPU-us per event of the segstream worker against a naive Faust agent, same topic, one run.

    .venv/bin/python benchmarks/bench_worker.py [--events 200000] [--naive-events 20000] [--rounds 3]
        [--baseline DIR] [--stages [--py-spy PATH]] [--profile order-history [--customers 23500]]

Uses SEGSTREAM_KAFKA_BOOTSTRAP / SEGSTREAM_REDIS_URL when set, else starts the local stack. Each run is a
separate process consuming the whole topic from the beginning into a fresh Redis prefix; the rate is taken
from the first applied event to the last (group join and start-up excluded), median over rounds.

On this 2-core box the broker and Redis share the cores with the worker, so events/s is bounded by the sum
of the CPU every process spends per event: each run prints CPU-us/event of the worker, redis-server and the
Kafka broker (read from /proc over the same window as the rate) and the ceiling that sum implies.
`--baseline DIR` runs the worker of another checkout (e.g. `git archive <rev> | tar -x -C DIR`) in
alternate rounds, so old and new are compared under the same load, and prints their medians side by side.
`--stages` adds one worker run sampled by py-spy and breaks its CPU per event into pipeline stages
(benchmarks/worker_profile.py).

Each worker run also prints transitions per event (records its run added to the transitions topic), CPU-us
per transition per process, and the Redis memory of its keys per customer (benchmarks/footprint.py: MEMORY
USAGE of every key of the run's prefix, per-customer keys and aggregates, no layout assumed).
`--profile order-history` puts the sample generator's import shape on the topic instead of the
engagement-heavy default (--customers customers, 23,500 by default, 18 months; --events is then unused).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.before_after import load_average, side_by_side
from benchmarks.footprint import Footprint, drop, measure
from benchmarks.machine import describe
from benchmarks.process_cpu import CpuMeter, budget_lines, stack_pids
from benchmarks.worker_profile import Breakdown, attach, find_py_spy
from streams.bootstrap import ensure_topics, keyspace
from streams.core.choice import compiled
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.redis_store import applied_events

ROOT = Path(__file__).resolve().parents[1]
WORKER = ("-m", "streams.cli", "worker")


@dataclass(frozen=True)
class Run:
    """One measured run: events/s over its window, and CPU seconds per process over the same window."""

    rate: float
    seconds: float
    events: int
    cpu: dict[str, float]
    transitions_per_event: float = 0.0  # when measured (run_worker with `ids`)
    footprint: Footprint | None = None

    def per_event(self, name: str) -> float:
        return self.cpu.get(name, 0.0) * 1e6 / self.events if self.events else 0.0

    def per_transition(self, name: str) -> float:
        tpe = self.transitions_per_event
        return self.per_event(name) / tpe if tpe else float("nan")

    def lines(self) -> list[str]:
        """CPU-us per event of each process, then per transition and bytes per customer when measured."""
        out = budget_lines(self.cpu, self.events, self.seconds)
        if self.transitions_per_event:
            per = ", ".join(f"{name} {self.per_transition(name):.2f}" for name in self.cpu)
            total = sum(self.per_transition(name) for name in self.cpu)
            out.append(
                f"  {self.transitions_per_event:.2f} transitions per event; "
                f"CPU-us/transition {per}, total {total:.2f}"
            )
        return out + (self.footprint.lines() if self.footprint is not None else [])

    def metrics(self) -> dict[str, float]:
        """The figures compared across variants (see before_after.side_by_side)."""
        out = {"events/s": self.rate, "transitions/event": self.transitions_per_event}
        for unit, cost in (("event", self.per_event), ("transition", self.per_transition)):
            for name in self.cpu:
                out[f"CPU-us/{unit} {name}"] = cost(name)
            out[f"CPU-us/{unit} total"] = sum(cost(name) for name in self.cpu)
        return out | (self.footprint.figures() if self.footprint is not None else {})


def services() -> tuple[str, str]:
    bootstrap, url = os.environ.get("SEGSTREAM_KAFKA_BOOTSTRAP"), os.environ.get("SEGSTREAM_REDIS_URL")
    if bootstrap and url:
        return bootstrap, url
    from streams import devstack

    st = devstack.up()
    return st.config.kafka_bootstrap, st.config.redis_url


def listening_pid(port: int) -> int | None:
    """The local process listening on TCP `port` (from /proc/net/tcp*), or None: services started by hand
    or by another checkout's devstack have no pid file we know of, but they listen on the configured port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{cols[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


def service_pids(bootstrap: str, url: str) -> dict[str, int]:
    pids = stack_pids()
    ports = {"redis": urlparse(url).port or 6379, "kafka": int(bootstrap.split(",")[0].rsplit(":", 1)[1])}
    for name, port in ports.items():
        if name not in pids and (pid := listening_pid(port)) is not None:
            pids[name] = pid
    return pids


def fresh_settings(bootstrap: str, url: str, partitions: int, kind: str = "bench") -> Settings:
    """Replay-mode settings on topics of their own (events, transitions, dead letters): runs never collide."""
    tag = f"{kind}-{uuid.uuid4().hex[:8]}"
    return Settings(
        kafka_bootstrap=bootstrap,
        redis_url=url,
        events_topic=f"{tag}-events",
        transitions_topic=f"{tag}-transitions",
        dlq_topic=f"{tag}-dlq",
        topic_partitions=partitions,
        mode="replay",
    )


def start_worker(
    base: Settings,
    source: Path = ROOT,
    argv: Sequence[str] = WORKER,
    kind: str = "bench",
    fresh: bool = True,
) -> tuple[Settings, subprocess.Popen[bytes]]:
    """A worker process (python `argv`) of the checkout `source`, on a fresh key prefix and consumer group
    (`fresh=False`: on those of `base`, to join its group)."""
    settings = base
    if fresh:
        settings = base.model_copy(
            update={
                "key_prefix": f"{kind}-{uuid.uuid4().hex[:8]}",
                "group_id": f"{kind}-{uuid.uuid4().hex[:8]}",
            }
        )
    env = settings.as_environment()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
    build = source / ".build" / "mypyc"
    buildable = (source / "streams" / "core" / "build.py").exists()  # older checkouts had no compiled core
    if source != ROOT and buildable and not (build / "manifest.json").exists() and compiled():
        raise SystemExit(  # its worker would run the pure-Python core against our compiled one
            f"{source} has no compiled core of its own: build it first (cd {source} &&"
            f" {sys.executable} -m streams.core.build), or run both sides with SEGSTREAM_PURE_PYTHON=1"
        )
    if source != ROOT and argv[:1] == ("-m",) and (build / "manifest.json").exists():
        # the baseline's own compiled core (this venv's start-up hook chose this checkout's build)
        code = _BASELINE_CORE.format(build=str(build), core=str(source / "segmentation"), module=argv[1])
        argv = ("-c", code, *argv[2:])
    proc = subprocess.Popen([sys.executable, *argv], env=env, cwd=source, stdout=subprocess.DEVNULL)
    return settings, proc


_BASELINE_CORE = (
    "import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != '_CompiledCore'];"
    " from streams.core import choice; choice.choose({build!r}, {core!r});"
    " runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
)


def run_worker(
    base: Settings,
    client: redis.Redis,
    total: int,
    pids: dict[str, int],
    source: Path = ROOT,
    profile: tuple[str, Path] | None = None,
    ids: set[str] | None = None,
) -> Run:
    """The worker of the checkout `source`; with `profile` (py-spy, output) sampled from the first event;
    with `ids` (the topic's customer ids) also transitions per event and Redis bytes per customer."""
    if ids is not None:
        published = records_in(base.kafka_bootstrap, base.transitions_topic)
    settings, proc = start_worker(base, source)
    # The window opens at the first event seen applied; on a tiny topic the worker may apply all of it in
    # the first batch seen, and the window then opens at its start instead (start-up CPU included).
    started = (time.monotonic(), 0, CpuMeter({"worker": proc.pid, **pids}))
    spy = None
    footprint, transitions_per_event, completed = None, 0.0, False
    try:
        first = None
        while True:
            done = applied_events(client, keyspace(settings), settings.topic_partitions)
            if done and first is None:
                first = (time.monotonic(), done, CpuMeter({"worker": proc.pid, **pids}))
                if profile is not None:
                    spy = attach(profile[0], proc.pid, profile[1])
            if done >= total:
                break
            if proc.poll() is not None:
                raise SystemExit("worker exited early")
            time.sleep(0.01)
        end = time.monotonic()
        assert first is not None
        if first[1] >= total:
            first = started
        spent = first[2].spent()
        completed = True
    finally:
        if spy is not None:  # stop sampling first: the worker's shutdown is not part of the window
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        proc.terminate()
        proc.wait(30)
        if completed and ids is not None:  # after the worker stopped: everything flushed, nothing moving
            added = records_in(base.kafka_bootstrap, base.transitions_topic) - published
            transitions_per_event = added / total
            footprint = drop(client, settings.key_prefix, measure(client, settings.key_prefix, ids))
        drop_keys(client, settings.key_prefix)
    seconds = end - first[0]
    events = total - first[1]
    return Run(events / seconds, seconds, events, spent, transitions_per_event, footprint)


def records_in(bootstrap: str, topic: str) -> int:
    """Records on a topic so far (the sum of its end offsets; 0 before it exists): what a run published."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = consumer.partitions_for_topic(topic) or ()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return int(sum(ends.values()))
    finally:
        consumer.close()


def run_naive(
    base: Settings, client: redis.Redis, bootstrap: str, url: str, count: int, pids: dict[str, int]
) -> Run:
    prefix = f"naive-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as datadir:
        env = dict(
            os.environ,
            BENCH_PREFIX=prefix,
            BENCH_APP_ID=prefix,
            BENCH_BOOTSTRAP=bootstrap,
            BENCH_DATADIR=datadir,
            BENCH_TOPIC=base.events_topic,
            BENCH_TRANSITIONS=base.transitions_topic + "-naive",
            BENCH_REDIS_URL=url,
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "benchmarks.naive_agent", "worker", "-l", "error"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        meter, started = None, 0
        try:
            while (done := int(client.hget(f"{prefix}:bench", "count") or 0)) < count:
                if done and meter is None:
                    meter, started = CpuMeter({"naive agent": proc.pid, **pids}), done
                if proc.poll() is not None:
                    raise SystemExit("naive agent exited early")
                time.sleep(0.05)
            spent = meter.spent() if meter is not None else {}
        finally:
            proc.terminate()
            proc.wait(60)
    stats = client.hgetall(f"{prefix}:bench")
    done = int(stats[b"count"])
    seconds = float(stats[b"last"]) - float(stats[b"first"])
    drop_keys(client, prefix)
    return Run(done / seconds, seconds, done - started, spent)


def drop_keys(client: redis.Redis, prefix: str) -> None:
    """Delete every key of a run's prefix."""
    batch = list(client.scan_iter(match=f"{prefix}:*", count=5000))
    for i in range(0, len(batch), 1000):
        client.delete(*batch[i : i + 1000])


def summary(name: str, runs: list[Run]) -> list[str]:
    """Median events/s and median CPU-us/event per process over the runs of one variant; per transition and
    bytes per customer (medians) when measured."""
    rate = statistics.median(r.rate for r in runs)
    names = list(runs[0].cpu)
    per_event = {n: statistics.median(r.per_event(n) for r in runs) for n in names}
    out = [f"{name:28}{rate:>12,.0f} events/s (median of {len(runs)})"]
    out += budget_lines({n: v * 1e-6 for n, v in per_event.items()}, 1, 1 / rate)
    if runs[0].transitions_per_event:
        tpe = statistics.median(r.transitions_per_event for r in runs)
        per = {n: statistics.median(r.per_transition(n) for r in runs) for n in names}
        text = ", ".join(f"{n} {v:.2f}" for n, v in per.items())
        out.append(f"  {tpe:.2f} transitions/event; CPU-us/transition {text}, total {sum(per.values()):.2f}")
    sizes = [r.footprint for r in runs if r.footprint is not None]
    if sizes:
        figures = {k: statistics.median(f.figures()[k] for f in sizes) for k in sizes[0].figures()}
        out.append("  Redis " + ", ".join(f"{k.strip()} {v:,.0f}" for k, v in figures.items()))
    return out


def events_topic(
    bootstrap: str,
    url: str,
    partitions: int,
    events: int,
    per_customer: int,
    kind: str = "bench",
    spec: sample.SampleSpec | None = None,
) -> tuple[Settings, int]:
    """Fresh topics and the engagement-heavy sample (~`events` events, `per_customer` each; or `spec`) on
    the events topic: what every job of a run consumes. Returns the settings naming the topics and the
    event count."""
    base = fresh_settings(bootstrap, url, partitions, kind)
    if spec is None:
        spec = sample.SampleSpec(
            customers=max(1, events // per_customer), days=365, seed=11, malformed_share=0.002
        )
    asyncio.run(ensure_topics(base))
    started = time.monotonic()
    total = asyncio.run(sample.produce(spec, bootstrap, base.events_topic))
    print(
        f"topic: {total} events ({spec.customers} customers, {spec.days} days, profile {spec.profile}, "
        f"{partitions} partitions), produced in {time.monotonic() - started:.1f}s"
    )
    return base, total


def order_history(customers: int) -> sample.SampleSpec:
    """The import shape (streams/sample/order_history.py): 18 months of orders, most customers new."""
    return sample.SampleSpec(customers=customers, days=548, seed=11, profile="order-history")


def topic_arguments(doc: str | None) -> argparse.ArgumentParser:
    """The options of the shared topic and of the naive agent's run (bench_worker.py, bench_peers.py)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000, help="approximate size of the topic")
    parser.add_argument("--naive-events", type=int, default=20_000, help="naive agent's events (0: none)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--events-per-customer",
        type=int,
        default=120,
        help="sets the population (events / this): fewer events per customer, more state writes per event",
    )
    return parser


def main() -> None:
    parser = topic_arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per worker variant")
    parser.add_argument("--baseline", type=Path, help="checkout whose worker runs in alternate rounds")
    parser.add_argument("--stages", action="store_true", help="one more run sampled by py-spy")
    parser.add_argument("--py-spy", help="py-spy executable (default: on PATH)")
    parser.add_argument("--profile-out", type=Path, help="keep py-spy's collapsed stacks in this file")
    parser.add_argument("--profile", choices=("default", "order-history"), default="default")
    parser.add_argument("--customers", type=int, default=23_500, help="order-history: the population")
    args = parser.parse_args()
    bootstrap, url = services()
    pids = service_pids(bootstrap, url)
    spec = order_history(args.customers) if args.profile == "order-history" else None
    base, total = events_topic(
        bootstrap, url, args.partitions, args.events, args.events_per_customer, spec=spec
    )
    ids = {key.decode() for key, _ in sample.keyed(spec or sample_of(args)) if key is not None}
    print(f"machine: {describe()}; {load_average()}")
    print(f"CPU accounted for: worker, {', '.join(pids) or 'nothing else'}")
    client = sync_client(url)
    variants = {"segstream worker": ROOT}
    if args.baseline is not None:
        variants = {"baseline worker": args.baseline.resolve(), **variants}
    runs: dict[str, list[Run]] = defaultdict(list)
    for i in range(args.rounds):
        order = list(variants.items())  # which goes first alternates too: the second of a round may pay more
        for name, source in order if i % 2 == 0 else order[::-1]:
            run = run_worker(base, client, total, pids, source, ids=ids)
            runs[name].append(run)
            print(f"  {name} round {i + 1}: {run.rate:,.0f} events/s ({run.seconds:.1f}s)")
            print("\n".join(run.lines()))
    naive = None
    if args.naive_events > 0:
        naive = run_naive(base, client, bootstrap, url, min(args.naive_events, total), pids)
        print(f"  naive Faust agent: {naive.rate:,.0f} events/s ({naive.events} events)")
        print("\n".join(budget_lines(naive.cpu, naive.events, naive.seconds)))
    print()
    for name in variants:
        if runs[name]:
            print("\n".join(summary(name, runs[name])))
    if naive is not None and runs["segstream worker"]:
        worker_rate = statistics.median(r.rate for r in runs["segstream worker"])
        print(f"{'ratio to the naive agent':28}{worker_rate / naive.rate:>11.1f}x")
    if runs["baseline worker"] and runs["segstream worker"]:
        old, new = ([r.metrics() for r in runs[name]] for name in ("baseline worker", "segstream worker"))
        print(
            f"\nbaseline and segstream worker, medians of {args.rounds} alternate rounds, {load_average()}:"
        )
        print("\n".join(side_by_side(old, new, ("before", "after"))))
    if args.stages:
        profile(args.py_spy, args.profile_out, base, client, total, pids)


def sample_of(args: argparse.Namespace) -> sample.SampleSpec:
    """The default profile's spec, as events_topic builds it (for the customer ids)."""
    customers = max(1, args.events // args.events_per_customer)
    return sample.SampleSpec(customers=customers, days=365, seed=11, malformed_share=0.002)


def profile(
    py_spy: str | None,
    keep: Path | None,
    base: Settings,
    client: redis.Redis,
    total: int,
    pids: dict[str, int],
) -> None:
    spy = find_py_spy(py_spy)
    if spy is None:
        print("\nprofile: py-spy not found (pip install py-spy; --py-spy PATH)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = keep or Path(tmp) / "worker.txt"
        run = run_worker(base, client, total, pids, profile=(spy, out))
        if not out.exists():
            print("\nprofile: py-spy wrote nothing (ptrace not permitted?)")
            return
        print(f"\nworker CPU per event by stage (py-spy run, {run.rate:,.0f} events/s, sampling included)")
        print("\n".join(Breakdown.read(out).lines(run.per_event("worker"))))


if __name__ == "__main__":
    main()
