"""segstream against the same job in quixstreams and in a naive Faust agent: events/s and CPU-us per event.

    pip install -e '.[bench-peer]'        # quixstreams, for the peer (benchmarks/peer_quix.py)
    .venv/bin/python benchmarks/bench_peers.py [--events 200000] [--rounds 3] [--naive-events 20000]

One topic (the engagement-heavy sample of bench_worker.py), one broker, one run: each round runs the
segstream worker (state in Redis) and the quixstreams peer (state in RocksDB + changelog topic), each in its
own process from the start of the topic; the naive Faust agent (benchmarks/naive_agent.py) runs once on the
first `--naive-events`. Each job is timed from its first event to its last one committed; CPU is read from
/proc over the same window for the job's process, redis-server (not for the peer, which uses no Redis) and
the Kafka broker; on a shared machine the services' figures include other clients' load. Medians over
rounds, then the ratios.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_worker import (
    Run,
    events_topic,
    run_naive,
    run_worker,
    service_pids,
    services,
    summary,
    topic_arguments,
)
from benchmarks.machine import describe
from benchmarks.process_cpu import CpuMeter, budget_lines
from streams.bootstrap import ensure_topics
from streams.settings import Settings
from streams.store.connection import sync_client

ROOT = Path(__file__).resolve().parents[1]
SEGSTREAM, PEER, NAIVE = "segstream worker", "quixstreams peer", "naive Faust agent"


def run_quix(base: Settings, total: int, pids: dict[str, int], transitions: str) -> Run:
    """The peer in its own process on a fresh consumer group and state directory, producing to
    `transitions` (and to a dead-letter topic of its own)."""
    tag = f"peer-{uuid.uuid4().hex[:8]}"
    topics = base.model_copy(
        update={"transitions_topic": transitions, "dlq_topic": f"{base.dlq_topic}-{tag}"}
    )
    asyncio.run(ensure_topics(topics))  # partitioned like segstream's (quixstreams would make 1 partition)
    with tempfile.TemporaryDirectory() as state_dir:
        env = dict(
            os.environ,
            BENCH_BOOTSTRAP=base.kafka_bootstrap,
            BENCH_TOPIC=base.events_topic,
            BENCH_TRANSITIONS=transitions,
            BENCH_DLQ=topics.dlq_topic,
            BENCH_GROUP=tag,
            BENCH_STATE_DIR=state_dir,
            BENCH_EVENTS=str(total),
            PYTHONPATH=str(ROOT),
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.peer_quix"], env=env, cwd=ROOT, stdout=subprocess.PIPE
        )
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline().split()
            if not first:
                raise SystemExit("quixstreams peer exited early (pip install -e '.[bench-peer]'?)")
            used = {name: pid for name, pid in pids.items() if name != "redis"}  # the peer's state is local
            meter = CpuMeter({"quix peer": proc.pid, **used})
            done = proc.stdout.readline().split()
            spent = meter.spent()
            if not done:
                raise SystemExit("quixstreams peer exited before its last event")
        finally:
            proc.terminate()
            proc.wait(60)
    count, started, ended = int(done[1]), float(done[2]), float(done[3])
    return Run(count / (ended - started), ended - started, count, spent)


def records_in(bootstrap: str, topic: str) -> int:
    """Records on a topic so far (the sum of its end offsets; 0 before it exists): what a job published."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        ends = consumer.end_offsets(
            [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        )
        return int(sum(ends.values()))
    finally:
        consumer.close()


def compare(runs: dict[str, list[Run]]) -> list[str]:
    """One line per job (median events/s, CPU-us/event of its process and of the services it uses: the peer
    uses no Redis), then segstream's ratios to each other job."""
    rows: dict[str, tuple[float, float, float | None, float]] = {}
    for name, measured in runs.items():
        if not measured:
            continue
        own = statistics.median(r.per_event(next(iter(r.cpu))) for r in measured)
        red = (
            statistics.median(r.per_event("redis") for r in measured) if "redis" in measured[0].cpu else None
        )
        kafka = statistics.median(r.per_event("kafka") for r in measured)
        rows[name] = (statistics.median(r.rate for r in measured), own, red, kafka)
    out = [f"{'job':20}{'events/s':>11}{'process':>10}{'redis':>8}{'kafka':>8}{'total CPU-us/event':>20}"]
    totals = {name: own + (red or 0.0) + kafka for name, (_, own, red, kafka) in rows.items()}
    for name, (rate, own, red, kafka) in rows.items():
        shown = "-" if red is None else f"{red:.1f}"
        out.append(f"{name:20}{rate:>11,.0f}{own:>10.1f}{shown:>8}{kafka:>8.1f}{totals[name]:>20.1f}")
    if SEGSTREAM in rows:
        for name, (rate, *_) in rows.items():
            if name != SEGSTREAM:
                out.append(
                    f"segstream vs {name}: {rows[SEGSTREAM][0] / rate:.1f}x events/s, "
                    f"{totals[name] / totals[SEGSTREAM]:.1f}x less CPU per event"
                )
    return out


def main() -> None:
    parser = topic_arguments(__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of segstream and the peer")
    args = parser.parse_args()
    bootstrap, url = services()
    pids = service_pids(bootstrap, url)
    base, total = events_topic(
        bootstrap, url, args.partitions, args.events, args.events_per_customer, "peers"
    )
    print(f"machine: {describe()}; CPU accounted for: the job, {', '.join(pids) or 'nothing else'}")
    client = sync_client(url)
    runs: dict[str, list[Run]] = defaultdict(list)
    for i in range(args.rounds):
        outputs = {SEGSTREAM: base.transitions_topic, PEER: f"{base.transitions_topic}-peer-{i}"}
        for name, out in outputs.items():
            before = records_in(bootstrap, out)
            if name == SEGSTREAM:
                run = run_worker(base, client, total, pids)
            else:
                run = run_quix(base, total, pids, out)
            runs[name].append(run)
            published = records_in(bootstrap, out) - before
            print(
                f"  {name} round {i + 1}: {run.rate:,.0f} events/s ({run.events} events, "
                f"{run.seconds:.1f}s), {published} transitions published"
            )
            print("\n".join(budget_lines(run.cpu, run.events, run.seconds)))
    if args.naive_events > 0:
        naive = run_naive(base, client, bootstrap, url, min(args.naive_events, total), pids)
        runs[NAIVE].append(naive)
        print(f"  {NAIVE}: {naive.rate:,.0f} events/s ({naive.events} events)")
        print("\n".join(budget_lines(naive.cpu, naive.events, naive.seconds)))
    print()
    for name, measured in runs.items():
        print("\n".join(summary(name, measured)))
    print()
    print("\n".join(compare(runs)))


if __name__ == "__main__":
    main()
