"""`make demo`: the main job end to end on the local stack, with a short readable report.

Starts the stack if needed, creates fresh topics, runs `segstream worker` as a separate process, feeds it
realistic synthetic events, shows transitions as they flow and ends with segment sizes per grid.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import orjson
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition

from segmentation import Definitions
from streams import devstack
from streams.bootstrap import ensure_topics, keyspace, sync_redis
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.redis_store import applied_events


def _segment_table(client: redis.Redis, settings: Settings) -> str:
    keys = keyspace(settings)
    # the exclusive grids of the default definitions (the clv grid exists only once calibrated)
    grids = [g for g in Definitions.default().grid_segments if not g.startswith("audience:")]
    sizes: dict[str, Counter[str]] = {g: Counter() for g in grids}
    customers = 0
    for p in range(settings.topic_partitions):
        for key in client.scan_iter(match=keys.customer_pattern(p), count=2000):
            row = client.hmget(key, grids)  # each grid's segment is stored under the grid's name
            customers += 1
            for grid, seg in zip(grids, row, strict=True):
                sizes[grid][seg.decode() if isinstance(seg, bytes) else (seg or "-")] += 1
    lines = [f"{customers} customers", f"{'grid':<14}{'segment':<22}{'customers':>10}"]
    for grid in grids:
        for i, (seg, n) in enumerate(sorted(sizes[grid].items(), key=lambda kv: (-kv[1], kv[0]))):
            lines.append(f"{grid if i == 0 else '':<14}{seg:<22}{n:>10}")
    return "\n".join(lines)


async def transitions(settings: Settings, show: int) -> tuple[int, list[str]]:
    """How many transitions the topic holds, and `show` moves spread over them. Read up to the end offsets
    the topic has now: a fixed 3-second read printed a short count once the topic held more than a busy box
    reads in 3 s (a larger --customers), and showed no move at all when fewer than 97 were read."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    moves: list[str] = []
    count = 0
    try:
        parts = [TopicPartition(settings.transitions_topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                for m in msgs:
                    count += 1
                    data = orjson.loads(m.value)["data"]
                    if data["from_segment"]:
                        moves.append(
                            f"  {data['customer_id']}  {data['grid']:<12} {data['from_segment']} -> "
                            f"{data['to_segment']}  at {data['effective_at']}  (cause {data['cause']})"
                        )
    finally:
        await consumer.stop()
    return count, [moves[i * len(moves) // show] for i in range(min(show, len(moves)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.demo", description=__doc__)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--malformed", type=float, default=0.005)
    args = parser.parse_args(argv)

    try:
        st = devstack.up()
    except devstack.StackError as exc:  # a port taken, no Java or Maven: the message says what to do
        print(f"segstream demo: the local stack cannot start: {exc}", file=sys.stderr)
        return 1
    tag = datetime.now().strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:4]
    settings = Settings(
        kafka_bootstrap=st.config.kafka_bootstrap,
        redis_url=st.config.redis_url,
        events_topic=f"demo-{tag}.customer-events",
        transitions_topic=f"demo-{tag}.segment-transitions",
        dlq_topic=f"demo-{tag}.customer-events.dlq",
        group_id=f"demo-{tag}",
        namespace=f"demo-{tag}",
        mode="replay",
    )
    print(
        f"segstream demo: Apache Kafka {devstack.kafka_version()} at {settings.kafka_bootstrap}, "
        f"Redis at {settings.redis_url}, namespace {settings.namespace}"
    )
    asyncio.run(ensure_topics(settings))
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=settings.as_environment(),
        stdout=subprocess.DEVNULL,
    )
    client = sync_redis(settings)
    try:
        spec = sample.SampleSpec(customers=args.customers, days=args.days, malformed_share=args.malformed)
        started = time.monotonic()
        total = asyncio.run(sample.produce(spec, settings.kafka_bootstrap, settings.events_topic))
        print(
            f"fed {total:,} events ({args.customers} customers over {args.days} days, "
            f"{args.malformed:.1%} malformed) in {time.monotonic() - started:.1f}s"
        )
        failed = wait_applied(
            total,
            lambda: applied_events(client, keyspace(settings), settings.topic_partitions),
            lambda: worker.poll() is None,
            lambda done: (
                print(f"\r  worker: {done:,}/{total:,} events applied", end="", flush=True)
                if sys.stdout.isatty()
                else None
            ),
        )
        if failed:
            print(f"segstream demo: {failed}", file=sys.stderr)
            return 1
        elapsed = time.monotonic() - started
        erase = "\r" if sys.stdout.isatty() else ""
        rate = total / elapsed
        print(f"{erase}  worker: {total:,}/{total:,} events applied, {rate:,.0f} events/s end to end")
        time.sleep(1.5)  # let the last time sweep run
        count, shown = asyncio.run(transitions(settings, 8))
        dead = asyncio.run(_count(settings, settings.dlq_topic))
        print(
            f"{count:,} transitions on {settings.transitions_topic}; {dead} dead letters on "
            f"{settings.dlq_topic}. A few of them:"
        )
        print("\n".join(shown))
        print()
        print(_segment_table(client, settings))
        print()
        print(lookup_hint(settings))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        client.close()
    return 0


STALL_S = 120.0
"""The demo gives up when its worker applied nothing for this long (a Redis refusing writes, say): it waited
for ever, printing nothing (the worker's own log says why)."""


def wait_applied(
    total: int,
    applied: Callable[[], int],
    alive: Callable[[], bool],
    show: Callable[[int], object],
    stall_s: float = STALL_S,
    clock: Callable[[], float] = time.monotonic,
    pause: Callable[[], object] = lambda: time.sleep(0.25),
) -> str | None:
    """Wait until `applied()` reaches `total`: None, or why it will not."""
    last, since = -1, clock()
    while (done := applied()) < total:
        if not alive():
            return "the worker stopped unexpectedly (its log is above)"
        now = clock()
        if done != last:
            last, since = done, now
        elif now - since >= stall_s:
            figures = f"{done:,} of {total:,} events; its log is above"
            return f"the worker applied nothing for {stall_s:.0f} s ({figures})"
        show(done)
        pause()
    return None


def lookup_hint(settings: Settings) -> str:
    """The command that shows one demo customer, with the demo's Redis: the stack may be on other ports
    (SEGSTREAM_DEVSTACK_REDIS_PORT) or the shell may name another Redis, and without it the command asked
    that other Redis and answered "unknown namespace"."""
    return (
        f"look one up: SEGSTREAM_REDIS_URL={settings.redis_url} SEGSTREAM_NAMESPACE={settings.namespace} "
        f"SEGSTREAM_EVENTS_TOPIC={settings.events_topic} .venv/bin/segstream customer c000042"
    )


async def _count(settings: Settings, topic: str) -> int:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    count = 0
    try:
        while batch := await consumer.getmany(timeout_ms=1000):
            count += sum(len(m) for m in batch.values())
    finally:
        await consumer.stop()
    return count


if __name__ == "__main__":
    sys.exit(main())
