"""Events/s of the segstream worker against a naive Faust agent, same topic, same machine, one run.

    .venv/bin/python benchmarks/bench_worker.py [--events 200000] [--naive-events 20000] [--rounds 3]

Uses SEGSTREAM_KAFKA_BOOTSTRAP / SEGSTREAM_REDIS_URL when set, else starts the local stack. Each run is a
separate process consuming the whole topic from the beginning into a fresh Redis prefix; the rate is taken
from the first applied event to the last (group join and start-up excluded), median over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe
from streams import sample
from streams.bootstrap import ensure_topics, keyspace
from streams.redis_store import applied_events
from streams.settings import Settings


def services() -> tuple[str, str]:
    bootstrap, url = os.environ.get("SEGSTREAM_KAFKA_BOOTSTRAP"), os.environ.get("SEGSTREAM_REDIS_URL")
    if bootstrap and url:
        return bootstrap, url
    from streams import devstack

    st = devstack.up()
    return st.config.kafka_bootstrap, st.config.redis_url


def run_worker(base: Settings, client: redis.Redis, total: int) -> tuple[float, float]:
    settings = base.model_copy(
        update={"key_prefix": f"bench-{uuid.uuid4().hex[:8]}", "group_id": f"bench-{uuid.uuid4().hex[:8]}"}
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=settings.as_environment(),
        stdout=subprocess.DEVNULL,
    )
    try:
        first = None
        while True:
            done = applied_events(client, keyspace(settings), settings.topic_partitions)
            if done and first is None:
                first = (time.monotonic(), done)
            if done >= total:
                break
            if proc.poll() is not None:
                raise SystemExit("worker exited early")
            time.sleep(0.01)
        end = time.monotonic()
    finally:
        proc.terminate()
        proc.wait(30)
        _drop(client, settings.key_prefix)
    assert first is not None
    seconds = end - first[0]
    return (total - first[1]) / seconds, seconds


def run_naive(base: Settings, client: redis.Redis, bootstrap: str, url: str, count: int) -> tuple[float, int]:
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
            cwd=Path(__file__).resolve().parents[1],
        )
        try:
            while int(client.hget(f"{prefix}:bench", "count") or 0) < count:
                if proc.poll() is not None:
                    raise SystemExit("naive agent exited early")
                time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(60)
    stats = client.hgetall(f"{prefix}:bench")
    done = int(stats[b"count"])
    rate = done / (float(stats[b"last"]) - float(stats[b"first"]))
    _drop(client, prefix)
    return rate, done


def _drop(client: redis.Redis, prefix: str) -> None:
    batch = list(client.scan_iter(match=f"{prefix}:*", count=5000))
    for i in range(0, len(batch), 1000):
        client.delete(*batch[i : i + 1000])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000, help="approximate size of the topic")
    parser.add_argument("--naive-events", type=int, default=20_000, help="events the naive agent processes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    bootstrap, url = services()
    tag = uuid.uuid4().hex[:8]
    base = Settings(
        kafka_bootstrap=bootstrap,
        redis_url=url,
        events_topic=f"bench-{tag}-events",
        transitions_topic=f"bench-{tag}-transitions",
        dlq_topic=f"bench-{tag}-dlq",
        topic_partitions=args.partitions,
        mode="replay",
    )
    spec = sample.SampleSpec(customers=max(1, args.events // 120), days=365, seed=11, malformed_share=0.002)
    asyncio.run(ensure_topics(base))
    started = time.monotonic()
    total = asyncio.run(sample.produce(spec, bootstrap, base.events_topic))
    print(f"machine: {describe()}")
    print(
        f"topic: {total} events ({spec.customers} customers, 365 days, {args.partitions} partitions), "
        f"produced in {time.monotonic() - started:.1f}s"
    )
    client = redis.Redis.from_url(url)
    rates = []
    for i in range(args.rounds):
        rate, seconds = run_worker(base, client, total)
        rates.append(rate)
        print(f"  segstream worker round {i + 1}: {rate:,.0f} events/s ({seconds:.1f}s)")
    naive_rate, naive_done = run_naive(base, client, bootstrap, url, min(args.naive_events, total))
    worker_rate = statistics.median(rates)
    print()
    print(f"{'':28}{'events/s':>12}")
    print(f"{'naive Faust agent':28}{naive_rate:>12,.0f}   ({naive_done} events, 1 run)")
    print(f"{'segstream worker (median)':28}{worker_rate:>12,.0f}   ({total} events, {args.rounds} runs)")
    print(f"{'ratio':28}{worker_rate / naive_rate:>11.1f}x")


if __name__ == "__main__":
    main()
