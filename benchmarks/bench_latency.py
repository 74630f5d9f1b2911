"""Event -> transition latency of the worker run as in production, at steady produce rates.

    .venv/bin/python benchmarks/bench_latency.py [--rates 1000,5000,10000] [--seconds 20] [--warmup 5]
        [--variant batch_max_events=500 ...] [--baseline DIR] [--profile-dir DIR [--py-spy PATH]]
    .venv/bin/python benchmarks/bench_latency.py --pipeline 1,2,10

Per rate and settings variant: fresh topics and key prefix, a `segstream worker` process in live mode
(settings from SEGSTREAM_* as in production, plus the variant's), and this process producing the
engagement-heavy sample at the rate, each event dated at its planned send time. It consumes the transitions
topic meanwhile: a transition's `data.cause` is the id of the event that caused it, so an event's latency is
the arrival of its first transition minus the moment it was handed to the producer. Events sent during the
warm-up (after the worker answered a first event) are left out; so are events that change no segment. The
run ends once the worker has committed every event (at most 60 s after the last send), so a worker that
falls behind shows its whole delay. Prints the rate asked and achieved, events measured, p50/p95/p99/max in
ms, transitions that arrived twice (`dup`), partitions the worker gave up and claimed again (`reclaim`),
events still not applied at the end (`behind`), the worker's mean events per batch (`batch`), and the CPU-us
per event of the worker, redis-server, the broker and this load generator (`load`: producing and reading
the transitions), and the worker's CPU-us per batch (`us/batch`: its CPU per event times its mean batch).
`--baseline DIR` runs another checkout's worker (`git archive <commit> | tar -x -C DIR`) before ours at every
rate, so both see the same load; `--profile-dir` keeps py-spy's collapsed stacks of every worker there.
`--pipeline 1,2,10` measures instead the CPU per batch of steps 1-7 alone (this process, the real Redis, no
Kafka) for batches of that many events: the fixed cost per batch without the broker's noise.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_worker import ROOT, drop_keys, fresh_settings, service_pids, services, start_worker
from benchmarks.machine import describe
from benchmarks.process_cpu import CpuMeter
from benchmarks.worker_group import group_state
from benchmarks.worker_profile import attach, find_py_spy
from segmentation import Definitions
from streams.bootstrap import ensure_topics, keyspace, redis_client
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.redis_store import RedisStateStore, applied_events
from streams.store.replies import text
from streams.topics.publish import submit
from streams.worker.batch import Record
from streams.worker.pipeline import BatchPipeline


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 < q <= 100) of ascending values: a value that was measured."""
    if not ordered:
        raise ValueError("no values")
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Matcher:
    """Each event's produce time, and its latency once the first transition it caused arrives."""

    measured_from: float = math.inf  # events sent before this (warm-up) are not measured
    sent: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    duplicates: int = 0  # transitions that arrived again (same id): a batch applied twice

    def produced(self, event_id: str, at: float) -> None:
        if at >= self.measured_from:
            self.sent[event_id] = at

    def arrived(self, transition_id: str, cause: str, at: float) -> None:
        """A transition caused by `cause` arrived: the event's first one counts, later ones are its siblings
        (other grids) or time-driven changes (cause `time`, never sent)."""
        if transition_id in self.ids:
            self.duplicates += 1
        self.ids.add(transition_id)
        sent = self.sent.pop(cause, None)
        if sent is not None:
            self.latencies.append(at - sent)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        out = {"events": float(len(ordered)), "duplicates": float(self.duplicates)}
        if ordered:
            out |= {f"p{q}": percentile(ordered, q) * 1000 for q in (50, 95, 99)}
            out["max"] = ordered[-1] * 1000
        return out


def live_events(
    count: int, rate: float, start: float, per_customer: int = 120
) -> Iterator[tuple[bytes, str, bytes]]:
    """(key, event id, line) of the sample, each dated at its planned send time start + i / rate (live mode
    dead-letters events dated in the future, and the sample's own dates are in the past)."""
    spec = sample.SampleSpec(customers=max(1, count // per_customer), seed=11, limit=count)
    for i, (key, line) in enumerate(sample.keyed(spec)):
        event: dict[str, Any] = orjson.loads(line)
        at = datetime.fromtimestamp(start + i / rate, UTC)
        event["occurred_at"] = at.isoformat(timespec="seconds").replace("+00:00", "Z")
        yield key or b"", str(event["event_id"]), orjson.dumps(event)


@dataclass(frozen=True)
class Result:
    rate: float
    achieved: float
    latency: dict[str, float]
    cpu_per_event: dict[str, float]


async def measure(
    settings: Settings,
    rate: float,
    seconds: float,
    warmup: float,
    pids: dict[str, int],
    source: Path = ROOT,
    profile: tuple[str, Path] | None = None,
    workers: int = 1,
) -> Result:
    """`workers` worker processes of one group (of the checkout `source`) at one steady rate; see the
    module doc. With `profile` (py-spy, output), the first worker is sampled from its first answer to its
    end."""
    await ensure_topics(settings)
    planned = int(rate * (seconds + warmup))
    events = list(live_events(planned + 1, rate, time.time()))
    settings, proc = start_worker(settings, source, kind="latency")
    others = [start_worker(settings, source, kind="latency", fresh=False)[1] for _ in range(workers - 1)]
    spy: subprocess.Popen[bytes] | None = None
    matcher = Matcher()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await consumer.start()
    await producer.start()
    try:
        parts = range(settings.topic_partitions)  # ensure_topics made it so
        consumer.assign([TopicPartition(settings.transitions_topic, p) for p in parts])
        await consumer.seek_to_beginning()
        answered = asyncio.Event()
        reader = asyncio.create_task(read_transitions(consumer, matcher, answered))
        key, _, line = events[0]
        await producer.send_and_wait(settings.events_topic, line, key=key)  # the worker is up once it answers
        await asyncio.wait_for(answered.wait(), 60.0)
        if others:  # the first answer may come before the others joined: wait for the group to settle
            await settled(settings, 1 + len(others))
        if profile is not None:
            spy = attach(profile[0], proc.pid, profile[1])
        meter, sent = await paced(
            producer,
            settings.events_topic,
            events[1:],
            rate,
            warmup,
            matcher,
            proc.pid,
            pids,
            [other.pid for other in others],
        )
        spent = meter.spent()
        behind = await caught_up(settings, len(events), deadline=time.monotonic() + 60.0)
        await asyncio.sleep(0.5)  # transitions are published before the commit: all are on the topic
        reader.cancel()
        if any(p.poll() is not None for p in (proc, *others)):
            raise SystemExit("worker exited early")
    finally:
        await producer.stop()
        await consumer.stop()
        for worker in (proc, *others):
            worker.terminate()
        for worker in (proc, *others):
            worker.wait(30)
        if spy is not None:
            spy.wait(30)
        client = sync_client(settings.redis_url)
        counters = worker_counters(client.hgetall(keyspace(settings).metrics()))
        drop_keys(client, settings.key_prefix)
    per_event = {name: cpu * 1e6 / sent.count for name, cpu in spent.items()}
    if others:  # the group's CPU as one figure
        group = sum(v for k, v in per_event.items() if k.startswith("worker"))
        per_event = {"worker": group} | {k: v for k, v in per_event.items() if not k.startswith("worker")}
    return Result(rate, sent.rate, matcher.summary() | counters | {"behind": behind}, per_event)


async def settled(settings: Settings, members: int, timeout: float = 120.0) -> None:
    """Until the consumer group is Stable with `members` members, plus a second for their claims."""
    deadline = time.monotonic() + timeout
    while (found := await group_state(settings)) != ("Stable", members):
        if time.monotonic() > deadline:
            raise SystemExit(f"group not stable with {members} members after {timeout:.0f}s: {found}")
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.0)


async def caught_up(settings: Settings, produced: int, deadline: float) -> int:
    """Wait until the worker committed every produced event (or the deadline): an event whose transitions
    had not arrived when the run stopped would be left out, and an overloaded worker would look fast. Returns
    how many events were still not applied."""
    client = sync_client(settings.redis_url)
    keys = keyspace(settings)
    try:
        while (done := applied_events(client, keys, settings.topic_partitions)) < produced:
            if time.monotonic() > deadline:
                return produced - done
            await asyncio.sleep(0.1)
        return 0
    finally:
        client.close()


def worker_counters(metrics: Mapping[bytes | str, bytes | str]) -> dict[str, float]:
    """From the worker's metrics hash (streams/store/metrics_hash.py): `refused`, how often it gave up a
    partition and claimed it again (`r:<worker>:fenced` / `rewound`: the partition is paused, claimed again
    and its events fetched again from the stored offset); `batch`, its mean events per batch."""
    totals: dict[str, int] = {}
    for key, value in metrics.items():
        name = text(key).rsplit(":", 1)[-1]
        if name in ("fenced", "rewound", "events", "batches"):
            totals[name] = totals.get(name, 0) + int(value)
    refused = totals.get("fenced", 0) + totals.get("rewound", 0)
    return {"refused": float(refused), "batch": totals.get("events", 0) / max(1, totals.get("batches", 0))}


@dataclass(frozen=True)
class Sent:
    count: int
    rate: float


async def paced(
    producer: AIOKafkaProducer,
    topic: str,
    events: Sequence[tuple[bytes, str, bytes]],
    rate: float,
    warmup: float,
    matcher: Matcher,
    worker: int,
    pids: dict[str, int],
    more_workers: Sequence[int] = (),
) -> tuple[CpuMeter, Sent]:
    """Send the events at `rate` (every 2 ms, all those due, in one record batch per partition: how a
    client producing a stream batches it, at a few CPU-us per event instead of ~20 for a `send` per record,
    so the load takes less of the box the worker runs on); CPU is metered over the measured part only
    (the workers of a group as `worker`, `worker2`, ...: `row` adds them up)."""
    workers = {"worker": worker} | {f"worker{n}": pid for n, pid in enumerate(more_workers, 2)}
    start = time.monotonic()
    matcher.measured_from = time.time() + warmup  # produce and arrival times are on the wall clock
    meter: CpuMeter | None = None
    i, pending, first = 0, [], 0
    while i < len(events):
        now = time.monotonic()
        due = min(len(events), int((now - start) * rate) + 1)
        if meter is None and now - start >= warmup:
            meter, first = CpuMeter({**workers, **pids, "load": os.getpid()}), i
        if i < due:  # one record batch per partition and tick: a send() per record cost ~20 CPU-us
            ticked = events[i:due]
            handed = time.time()
            for _, event_id, _ in ticked:
                matcher.produced(event_id, handed)
            acks, _ = await submit(producer, topic, ((key, line, ()) for key, _, line in ticked))
            pending.extend(acks)
            i = due
        if len(pending) > 1000:
            await asyncio.gather(*pending)
            pending.clear()
        await asyncio.sleep(0.002)
    await asyncio.gather(*pending)
    elapsed = time.monotonic() - start - warmup
    assert meter is not None, "the run is shorter than its warm-up"
    return meter, Sent(len(events) - first, (len(events) - first) / elapsed)


async def read_transitions(consumer: AIOKafkaConsumer, matcher: Matcher, answered: asyncio.Event) -> None:
    while True:
        batches = await consumer.getmany(timeout_ms=100)
        at = time.time()
        for records in batches.values():
            for rec in records:
                envelope = orjson.loads(rec.value)
                matcher.arrived(envelope["id"], envelope["data"]["cause"], at)
            answered.set()


def variant(text: str) -> dict[str, Any]:
    """`name=value,name=value` (Settings field names) as a settings update, values checked as the worker
    would check them."""
    pairs = dict(item.split("=", 1) for item in text.split(",") if item)
    unknown = [name for name in pairs if name not in Settings.model_fields]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown setting(s): {', '.join(unknown)}")
    try:
        checked = Settings.model_validate(pairs)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(
            ": ".join(line.strip() for line in str(exc).splitlines()[1:3])
        ) from None
    return {name: getattr(checked, name) for name in pairs}


async def pipeline_cost(settings: Settings, per_batch: int, batches: int = 1500) -> tuple[float, float]:
    """(CPU-us per batch, CPU-us per event) of this process running batches of `per_batch` live-dated events
    of one partition through steps 1-7 (`BatchPipeline.process`) against the real Redis, no Kafka: the
    worker's fixed cost per batch without the broker, after a warm-up that fills the state cache."""
    client = redis_client(settings)
    try:
        store = RedisStateStore(client, keyspace(settings))
        pipeline = BatchPipeline(settings, Definitions.default(), store, None, None)
        await pipeline.own(0)
        count = 2 * batches * per_batch
        lines = live_events(count, 1000.0, time.time() - count / 1000)
        records = [Record("latency", 0, n, key, value) for n, (key, _, value) in enumerate(lines)]
        half = count // 2
        for start in range(0, half, per_batch):
            await pipeline.process(0, records[start : start + per_batch])
        before = os.times()
        for start in range(half, count, per_batch):
            await pipeline.process(0, records[start : start + per_batch])
        after = os.times()
    finally:
        await client.aclose()
    spent = (after.user - before.user + after.system - before.system) * 1e6
    return spent / batches, spent / half


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="1000,5000,10000", help="events/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds sent before measuring")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1, help="worker processes in the group (CPU summed)")
    parser.add_argument(
        "--variant", type=variant, action="append", default=[], help="settings to compare (name=value,...)"
    )
    parser.add_argument(
        "--baseline", type=Path, help="another checkout's worker, run before ours at every rate (same load)"
    )
    parser.add_argument("--profile-dir", type=Path, help="sample each worker with py-spy, stacks in here")
    parser.add_argument("--py-spy", help="py-spy executable (default: on PATH)")
    parser.add_argument(
        "--pipeline", help="batch sizes (e.g. 1,2,10): CPU per batch of steps 1-7 alone, no Kafka; then exit"
    )
    args = parser.parse_args()
    if args.pipeline:
        bootstrap, url = services()
        print(f"machine: {describe()}; steps 1-7 in this process against {url}, no Kafka")
        for size in (int(n) for n in args.pipeline.split(",")):
            live = fresh_settings(bootstrap, url, 1, "latency").model_copy(
                update={"mode": "live", "key_prefix": f"latency-pipeline-{uuid.uuid4().hex[:8]}"}
            )
            try:
                per_batch, per_event = asyncio.run(pipeline_cost(live, size))
            finally:
                drop_keys(sync_client(url), live.key_prefix)
            print(f"  {size:>4} events/batch: {per_batch:7.0f} CPU-us per batch, {per_event:6.1f} per event")
        return
    spy = find_py_spy(args.py_spy) if args.profile_dir else None
    if args.profile_dir and spy is None:
        raise SystemExit(
            "--profile-dir needs py-spy: pip install py-spy (any environment), pass --py-spy PATH"
        )
    bootstrap, url = services()
    pids = service_pids(bootstrap, url)
    print(f"machine: {describe()}; CPU accounted for: worker, {', '.join(pids) or 'nothing else'}")
    print(
        f"{'rate':>7}{'achieved':>10}{'events':>8}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8} ms"
        f"{'dup':>6}{'reclaim':>8}{'behind':>8}{'batch':>7}{'us/batch':>9}  CPU-us/event"
    )
    sources = [("base", args.baseline.resolve()), ("new", ROOT)] if args.baseline else [("", ROOT)]
    updates: list[dict[str, Any]] = [{}, *args.variant]
    for update in updates:
        print("settings: " + (",".join(f"{k}={v}" for k, v in update.items()) or "defaults"))
        for rate in (float(r) for r in args.rates.split(",")):
            for name, source in sources:
                base = fresh_settings(bootstrap, url, args.partitions, "latency")
                settings = base.model_copy(update={"mode": "live", **update})
                profile = None
                if spy is not None:
                    args.profile_dir.mkdir(parents=True, exist_ok=True)
                    tag = "-".join(
                        filter(None, [name, f"{rate:.0f}", *(f"{k}={v}" for k, v in update.items())])
                    )
                    profile = (spy, args.profile_dir / f"{tag}.txt")
                result = asyncio.run(
                    measure(settings, rate, args.seconds, args.warmup, pids, source, profile, args.workers)
                )
                print(row(result) + (f"  {name}" if name else ""), flush=True)


def row(result: Result) -> str:
    lat = result.latency
    ms = "".join(f"{lat[k]:>8.1f}" if k in lat else f"{'-':>8}" for k in ("p50", "p95", "p99", "max"))
    cpu = " ".join(f"{k} {v:.1f}" for k, v in result.cpu_per_event.items())
    again = f"{lat['duplicates']:>6.0f}{lat['refused']:>8.0f}{lat['behind']:>8.0f}{lat['batch']:>7.1f}"
    again += f"{lat['batch'] * result.cpu_per_event.get('worker', 0.0):>9.0f}"
    return f"{result.rate:>7,.0f}{result.achieved:>10,.0f}{lat['events']:>8,.0f}{ms}   {again}  {cpu}"


if __name__ == "__main__":
    main()
