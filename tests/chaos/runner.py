"""One scenario end to end: log, topic, workers, faults, catch-up, reference replay, comparison."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis

from streams.bootstrap import ensure_topics
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.due_index import overdue
from streams.store.keys import KeySpace
from tests.chaos.compare import (
    META_SKIP,
    Verdict,
    compare_dead_letters,
    compare_ids,
    dead_letter_origins,
    namespace_state,
    rejected_origins,
    state_differences,
    transition_ids,
)
from tests.chaos.feed import Feeder, Log
from tests.chaos.scenarios import FAULTS, Scenario
from tests.chaos.stack import REPO, PrivateStack
from tests.chaos.workers import WorkerPool

PARTITIONS = 4
WORKER_NS, REFERENCE_NS = "worker", "reference"


@dataclass
class Row:
    scenario: str
    seed: int
    events: int = 0
    transitions: int = 0
    held: bool | None = None  # None: the harness could not finish (error)
    problems: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)  # worker exits nobody asked for (restarted)
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return {True: "held", False: "NOT HELD", None: "ERROR"}[self.held]

    def line(self) -> str:
        head = (
            f"{self.scenario:<17} seed {self.seed:<4} events {self.events:>6}"
            f"  transitions {self.transitions:>6}  {self.seconds:>5.0f}s  {self.status}"
        )
        text = "\n".join([head, *(f"    - {p}" for p in self.problems), *(f"    . {i}" for i in self.info)])
        # a problem may quote a stored value: binary ones (the packed state) travel as surrogate escapes
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _base_env() -> dict[str, str]:
    """The caller's environment without SEGSTREAM_* (a shell pointing at the shared stack must not leak)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSTREAM_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


class Ctx:
    """What a fault function acts on."""

    def __init__(
        self, scenario: Scenario, stack: PrivateStack, settings: Settings, pool: WorkerPool, feeder: Feeder
    ) -> None:
        self.scenario, self.stack, self.settings, self.pool, self.feeder = (
            scenario,
            stack,
            settings,
            pool,
            feeder,
        )
        self.keys = KeySpace(settings.key_prefix, WORKER_NS, settings.events_topic)
        self.events: list[str] = []
        self.started = time.monotonic()
        self.stall_s = 0.0  # the longest pause of progress a scenario measured (replicated_broker_kill9)

    def event(self, text: str) -> None:
        self.events.append(f"{time.monotonic() - self.started:5.1f}s {text}")

    def _meta(self) -> list[dict[str, str]]:
        client = sync_client(  # single server or cluster (streams/store/connection.py)
            self.settings.redis_url,
            decode_responses=True,
            encoding_errors="surrogateescape",
            socket_timeout=5,
        )
        try:
            return [client.hgetall(self.keys.partition_meta(p)) for p in range(PARTITIONS)]  # type: ignore[misc]
        finally:
            client.close()

    def applied_total(self) -> int:
        """Records applied so far by the worker namespace (sum of next offsets), -1 while Redis is down."""
        try:
            return sum(int(m["offset"]) + 1 for m in self._meta() if "offset" in m)
        except redis.RedisError:
            return -1

    async def until_owned(self, timeout: float = 60.0) -> None:
        """Every partition claimed by a worker (its meta has a fence): the feed starts into a running group.
        (A worker that joins a fresh group while records already flow has been seen to skip the first records
        of a partition: the `cold_start` scenario checks that alone, instead of every scenario by chance.)"""
        deadline = time.monotonic() + timeout
        while not all("fence" in m for m in self._meta()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the workers did not claim every partition within {timeout:.0f}s")
            await asyncio.sleep(0.1)

    async def until_progress(self, timeout: float = 30.0) -> None:
        """Wait until the workers applied something new (so a fault lands while they are working), or
        applied everything sent so far (nothing left to do)."""
        start = self.applied_total()
        deadline = time.monotonic() + timeout
        while True:
            now = self.applied_total()
            if now > start or now >= self.feeder.sent:
                return
            if time.monotonic() > deadline:
                self.event(f"no progress within {timeout:.0f}s before the next fault")
                return
            await asyncio.sleep(0.1)

    def caught_up(self, ends: dict[int, int]) -> tuple[bool, str]:
        """Every record applied and no time-driven change pending at the partition's watermark."""
        client = sync_client(  # single server or cluster (streams/store/connection.py)
            self.settings.redis_url,
            decode_responses=True,
            encoding_errors="surrogateescape",
            socket_timeout=5,
        )
        try:
            behind = []
            for p, end in ends.items():
                meta = client.hgetall(self.keys.partition_meta(p))
                applied = int(meta["offset"]) if "offset" in meta else -1
                if end > 0 and applied != end - 1:
                    behind.append(f"p{p} applied {applied} of {end - 1}")
                elif "watermark" in meta:
                    due = overdue(client, self.keys, p, int(meta["watermark"]))
                    if due:
                        behind.append(f"p{p} {due} customers due at the watermark")
            return not behind, ", ".join(behind)
        except redis.RedisError as exc:
            return False, f"redis: {exc}"
        finally:
            client.close()


def _settings(stack: PrivateStack, tag: str) -> Settings:
    return Settings(
        kafka_bootstrap=stack.kafka_bootstrap,
        redis_url=stack.redis_url,
        events_topic=f"chaos-{tag}-events",
        transitions_topic=f"chaos-{tag}-transitions",
        dlq_topic=f"chaos-{tag}-dlq",
        group_id=f"chaos-{tag}",
        key_prefix=f"chaos:{tag}",
        namespace=WORKER_NS,
        topic_partitions=PARTITIONS,
        mode="replay",
        batch_max_events=500,  # many commits per second: a kill lands between publish and commit often
        batch_max_ms=50,
        sweep_interval_ms=100,
        retry_max_backoff_s=2.0,
        redis_timeout_s=5.0,
    )


async def run_scenario(scenario: Scenario, stack: PrivateStack, workdir: Path) -> Row:
    # The feed's and the readers' clients log every refused connection while the broker is down on purpose.
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    row = Row(scenario.name, scenario.seed)
    started = time.monotonic()
    tag = f"{scenario.name.replace('_', '-')}-{scenario.seed}-{uuid.uuid4().hex[:6]}"
    rundir = workdir / tag
    rundir.mkdir(parents=True, exist_ok=True)
    settings = _settings(stack, tag)
    env = settings.as_environment(_base_env())
    spec = sample.SampleSpec(
        customers=scenario.customers, days=scenario.days, seed=scenario.seed, malformed_share=0.01
    )
    log = Log.generate(spec, rundir / "events.jsonl.gz", PARTITIONS)
    hostile = log.add_hostile() if scenario.hostile else []
    row.events = len(log.records)
    await ensure_topics(settings)
    pool = WorkerPool(env, scenario.workers, rundir)
    rate = len(log.records) / scenario.feed_s
    feeder = Feeder(settings.kafka_bootstrap, settings.events_topic, log.records, rate)
    ctx = Ctx(scenario, stack, settings, pool, feeder)
    verdict = Verdict()
    try:
        pool.start_all()
        if scenario.name != "cold_start":
            await ctx.until_owned()
            await asyncio.sleep(1.0)
            ctx.event("every partition owned: feed starts")
        feeding = asyncio.create_task(feeder.run())
        faults = asyncio.create_task(FAULTS[scenario.name](ctx))
        await asyncio.wait_for(asyncio.gather(feeding, faults), scenario.feed_s * 4 + 180)
        ctx.event("feed and faults done")
        ends = _end_offsets(settings)
        if ends != log.ends:
            raise RuntimeError(f"HARNESS: the topic holds {ends}, the log lays out {log.ends}")
        ok, behind = await _settle(ctx, log.ends, scenario.settle_s)
        ctx.event("caught up" if ok else f"not caught up: {behind}")
        if not ok:
            verdict.problems.append(f"not caught up within {scenario.settle_s:.0f}s: {behind}")
        await pool.stop_all()
        ctx.event("workers stopped")
        ref_ids, rejects = await asyncio.to_thread(_reference, settings, log, env, rundir)
        row.transitions = len(ref_ids)
        skip_meta = (*META_SKIP, "offset") if hostile else META_SKIP
        reference = namespace_state(
            settings.model_copy(update={"namespace": REFERENCE_NS}), REFERENCE_NS, skip_meta
        )
        mine = namespace_state(settings, WORKER_NS, skip_meta)
        verdict.problems += state_differences(reference, mine)
        got_ids = transition_ids(settings.kafka_bootstrap, settings.transitions_topic)
        compare_ids(ref_ids, got_ids, verdict)
        expected_dead = rejects + [(p, o) for p, o, _ in hostile]
        compare_dead_letters(
            expected_dead, dead_letter_origins(settings.kafka_bootstrap, settings.dlq_topic), verdict
        )
        verdict.info.append(
            f"{sum(1 for k in reference if ':c:' in k)} customers, {len(reference)} keys compared; "
            f"{len(got_ids)} transitions on the topic; {len(set(expected_dead))} dead letters expected"
        )
        row.held = verdict.held
    except Exception as exc:  # the harness could not finish: report, never hide
        row.held = None
        verdict.problems.append(f"ERROR {type(exc).__name__}: {exc}")
    finally:
        pool.kill_all()
        if feeder.sent < len(log.records):
            feeder.resume()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task() and not task.done():
                task.cancel()
        try:
            await asyncio.to_thread(stack.ensure_up)  # a scenario that failed half-way may leave one down
        except Exception as exc:
            verdict.problems.append(f"ERROR the private stack did not come back: {exc}")
            row.held = None
    if row.held:  # a run that did not hold keeps its keys for a look
        await asyncio.to_thread(stack.forget, settings.key_prefix)
    row.problems = verdict.problems
    row.crashes = pool.crashes
    row.info = verdict.info + pool.notes + [f"{len(ctx.events)} events: " + "; ".join(ctx.events)]
    row.seconds = time.monotonic() - started
    (rundir / "result.txt").write_text(row.line() + "\n")
    return row


async def _settle(ctx: Ctx, ends: dict[int, int], timeout: float) -> tuple[bool, str]:
    """Caught up and quiet (the partitions' commit counters unchanged for 2 s), or the timeout."""
    deadline = time.monotonic() + timeout
    behind = ""
    stable_since: float | None = None
    last: list[str] | None = None
    while time.monotonic() < deadline:
        ok, behind = ctx.caught_up(ends)
        try:
            seqs = [m.get("seq", "") for m in ctx._meta()]
        except redis.RedisError:
            seqs = None
        if ok and seqs is not None and seqs == last:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= 2.0:
                return True, ""
        else:
            stable_since = None
        last = seqs
        await asyncio.sleep(0.25)
    return False, behind


def _end_offsets(settings: Settings) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        tps = [TopicPartition(settings.events_topic, p) for p in range(PARTITIONS)]
        return {tp.partition: int(off) for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def _reference(
    settings: Settings, log: Log, env: dict[str, str], rundir: Path
) -> tuple[list[str], list[tuple[int, int]]]:
    """`segstream replay` of the same file into the reference namespace, its transitions emitted to a topic
    of their own; returns their ids and the rejected lines' (partition, offset)."""
    topic = settings.transitions_topic + "-reference"
    cmd = [sys.executable, "-m", "streams.cli", "replay", str(log.path), "--namespace", REFERENCE_NS]
    cmd += ["--emit", topic, "--out-dir", str(rundir), "--no-progress"]
    ref_env = {**env, "SEGSTREAM_NAMESPACE": REFERENCE_NS}
    result = subprocess.run(
        cmd, env=ref_env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    (rundir / "replay.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"HARNESS: segstream replay exited {result.returncode}: {result.stderr[-500:]}")
    ids = transition_ids(settings.kafka_bootstrap, topic)
    return ids, rejected_origins(rundir / f"replay-{REFERENCE_NS}.rejects.jsonl")
