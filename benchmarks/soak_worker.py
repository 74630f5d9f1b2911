"""Soak: does the worker's RSS stay flat over a long run at a steady event rate?

    .venv/bin/python benchmarks/soak_worker.py [--minutes 20] [--rate 3000] [--customers 200000]
        [--sample-s 30] [--cache-size 20000] [--partitions 4] [--baseline-gc]

Starts `segstream worker` (replay mode: its clock is event time) on fresh topics and a fresh key prefix, as
bench_worker.py does, then produces the sample generator's events (--customers over 365 days, 0.2 %
malformed, keyed by customer) at --rate events/s for --minutes. Every --sample-s seconds it records the
worker's RSS (VmRSS), the cores it used since the last sample, the events applied (offsets in Redis) and the
lag (events produced and acked but not yet applied). At the end: the table, the median RSS of the first and
last quarter, the RSS slope (least squares, MiB/hour) over the second half and over the last quarter (the
two differ while the worker still warms up), the CPU budget of the run and how many customers it saw.

--cache-size is the worker's state_cache_size (per process, shared by its partitions; default here 80k):
below the population, so the LRU fills during warm-up and then churns (the worker's default, 200k, would
hold every customer of a 200k population and only ever grow). --baseline-gc runs the worker with
CPython's default GC thresholds instead of streams.worker.loop.GC_THRESHOLDS (patched in the worker process
before it starts: the worker has no knob for it), to compare two runs. The worker, the Redis keys and
the topics are removed at the end. Uses SEGSTREAM_KAFKA_BOOTSTRAP / SEGSTREAM_REDIS_URL when set, else the
local stack.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from aiokafka.admin import AIOKafkaAdminClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_worker import WORKER, drop_keys, fresh_settings, service_pids, services, start_worker
from benchmarks.machine import describe
from benchmarks.process_cpu import CpuMeter, budget_lines, cpu_seconds
from streams.bootstrap import ensure_topics, keyspace, producer
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.keys import KeySpace
from streams.store.redis_store import applied_events

BASELINE_GC = (
    "-c",
    "import gc, sys, streams.worker.loop as w; from streams.cli import main; "
    "w.GC_THRESHOLDS = gc.get_threshold(); sys.exit(main(['worker']))",
)
MIB = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    seconds: float  # since production started
    rss: int  # bytes
    cores: float  # worker CPU seconds per wall second since the previous sample
    applied: int
    produced: int

    @property
    def lag(self) -> int:
        return self.produced - self.applied


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) * 1024
    return out


class Sampler:
    def __init__(self, pid: int, client: redis.Redis, keys: KeySpace, partitions: int) -> None:
        self.pid, self.client, self.keys, self.partitions = pid, client, keys, partitions
        self.samples: list[Sample] = []
        self.begin({})

    def begin(self, pids: dict[str, int]) -> None:
        """Start the clock and the CPU accounting of the worker and of `pids` (Redis, Kafka)."""
        self.start = self.last = time.monotonic()
        self.last_cpu = cpu_seconds(self.pid) or 0.0
        self.meter = CpuMeter({"worker": self.pid, **pids})

    def wait_claims(self, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
        """Until the worker owns every partition: a backlog produced before it joins would make its first
        batches large, and their transient allocations set a heap high-water a slow leak could hide under."""
        deadline = time.monotonic() + timeout
        metas = [self.keys.partition_meta(p) for p in range(self.partitions)]
        while not all(self.client.hexists(meta, "fence") for meta in metas):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the worker did not claim its partitions")
            time.sleep(0.2)

    def take(self, produced: int) -> Sample:
        now, cpu = time.monotonic(), cpu_seconds(self.pid) or self.last_cpu
        cores = (cpu - self.last_cpu) / (now - self.last) if now > self.last else 0.0
        self.last, self.last_cpu = now, cpu
        applied = applied_events(self.client, self.keys, self.partitions)
        s = Sample(now - self.start, memory(self.pid)["VmRSS"], cores, applied, produced)
        self.samples.append(s)
        print(row(s), flush=True)
        return s


def row(s: Sample) -> str:
    counts = f"{s.applied:>11,} {s.produced:>11,} {s.lag:>9,}"
    return f"{s.seconds / 60:7.1f} {s.rss / MIB:9.1f} {s.cores:6.2f} {counts}"


async def soak(
    args: argparse.Namespace,
    settings: Settings,
    proc: subprocess.Popen[bytes],
    sampler: Sampler,
    pids: dict[str, int],
) -> int:
    """Produce at --rate for --minutes, sampling every --sample-s; the number of events produced."""
    spec = sample.SampleSpec(customers=args.customers, days=365, seed=11, malformed_share=0.002)
    lines = sample.keyed(spec)
    prod = producer(settings)
    await prod.start()
    sent = produced = 0
    exhausted = False
    try:
        sampler.wait_claims(proc)
        sampler.begin(pids)
        sampler.take(0)
        end, next_sample = sampler.start + args.minutes * 60, sampler.start + args.sample_s
        while (now := time.monotonic()) < end:
            if proc.poll() is not None:
                raise SystemExit(f"worker exited early (status {proc.returncode})")
            due = int((now - sampler.start) * args.rate)
            pending = [
                await prod.send(settings.events_topic, line, key=key)
                for key, line in itertools.islice(lines, max(0, due - sent))
            ]
            if not exhausted and sent + len(pending) < due:
                exhausted = True
                print(f"the sample ran out after {sent + len(pending):,} events; only sampling now")
            sent += len(pending)
            await asyncio.gather(*pending)
            produced = sent
            if now >= next_sample:
                sampler.take(produced)
                next_sample += args.sample_s
            await asyncio.sleep(0.05)
        sampler.take(produced)
    finally:
        await prod.stop()
    return produced


async def delete_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security())
    await admin.start()
    try:
        await admin.delete_topics([settings.events_topic, settings.transitions_topic, settings.dlq_topic])
    finally:
        await admin.close()


def slope(samples: list[Sample]) -> float:
    """RSS growth in MiB/hour, least squares over the samples given."""
    if len(samples) < 2:
        return float("nan")
    fit = statistics.linear_regression([s.seconds / 3600 for s in samples], [s.rss / MIB for s in samples])
    return fit.slope


def report(samples: list[Sample], peak: int, spent: dict[str, float], args: argparse.Namespace) -> None:
    total, samples = samples[-1].seconds, samples[1:]  # the first sample is before any event
    first = [s for s in samples if s.seconds <= total / 4]
    last = [s for s in samples if s.seconds >= total * 3 / 4]
    second_half = [s for s in samples if s.seconds >= total / 2]
    events = samples[-1].applied
    rss_first, rss_last = (statistics.median(s.rss for s in part) / MIB for part in (first, last))
    print()
    print(f"RSS median, first quarter  {rss_first:9.1f} MiB ({len(first)} samples)")
    print(f"RSS median, last quarter   {rss_last:9.1f} MiB ({len(last)} samples)")
    print(f"RSS slope, second half     {slope(second_half):+9.1f} MiB/hour ({len(second_half)} samples)")
    print(f"RSS slope, last quarter    {slope(last):+9.1f} MiB/hour (still warming up if far above)")
    print(f"RSS peak (VmHWM)           {peak / MIB:9.1f} MiB")
    half, most = second_half[0].lag, max(s.lag for s in samples)
    print(
        f"events applied {events:,} of {samples[-1].produced:,} produced in {total / 60:.1f} min; "
        f"lag at half time {half:,}, max {most:,}, at the end {samples[-1].lag:,}"
    )
    if events:
        print("CPU over the run:")
        print("\n".join(budget_lines(spent, events, total)))
    gc = "CPython default" if args.baseline_gc else "worker.GC_THRESHOLDS"
    print(
        f"worker: {args.partitions} partitions, state_cache_size {args.cache_size:,}, GC {gc}; "
        f"{args.customers:,} customers at {args.rate:,} events/s"
    )
    print(f"machine: {describe()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=3000, help="events produced per second")
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--sample-s", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--cache-size", type=int, default=80_000, help="worker's state_cache_size")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--baseline-gc", action="store_true", help="CPython's default GC thresholds")
    args = parser.parse_args()
    bootstrap, url = services()
    pids = service_pids(bootstrap, url)
    base = fresh_settings(bootstrap, url, args.partitions, "soak")
    base = base.model_copy(update={"state_cache_size": args.cache_size})
    asyncio.run(ensure_topics(base))
    client = sync_client(url)
    settings, proc = start_worker(base, argv=BASELINE_GC if args.baseline_gc else WORKER, kind="soak")
    print(f"worker pid {proc.pid}, topic {settings.events_topic}, prefix {settings.key_prefix}")
    print(f"{'minute':>7} {'RSS MiB':>9} {'cores':>6} {'applied':>11} {'produced':>11} {'lag':>9}")
    try:
        sampler = Sampler(proc.pid, client, keyspace(settings), args.partitions)
        asyncio.run(soak(args, settings, proc, sampler, pids))
        spent, peak = sampler.meter.spent(), memory(proc.pid)["VmHWM"]
        customers = sum(1 for _ in client.scan_iter(match=f"{settings.key_prefix}:*:c:*", count=5000))
    finally:
        proc.terminate()
        proc.wait(60)
        drop_keys(client, settings.key_prefix)
        asyncio.run(delete_topics(base))
    report(sampler.samples, peak, spent, args)
    cached = args.cache_size
    print(f"customers in Redis: {customers:,} (the worker caches at most {cached:,} states)")


if __name__ == "__main__":
    main()
