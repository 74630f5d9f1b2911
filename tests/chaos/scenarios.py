"""The fault scenarios: what each injects and when (by share of the feed sent), full and reduced sizes."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.chaos.runner import Ctx

# aiokafka's default consumer session timeout (streams/bootstrap.py does not change it, and no setting
# does): a worker stopped longer than this is dropped from the group and its partitions move.
SESSION_TIMEOUT_S = 10.0
BURST_SHARE = 3  # the bursts before a scenario's faults add up to a third of the log (see into_batches)


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    customers: int
    days: int
    feed_s: float  # the feed is spread over this long, so faults land mid-stream
    workers: int = 1
    hostile: bool = False
    settle_s: float = 120.0  # after the feed and the faults, to catch up
    params: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}[seed {self.seed}]"


async def baseline(ctx: Ctx) -> None:
    """No fault: the harness itself must find the worker equal to the reference."""


async def into_batches(ctx: Ctx, rng: random.Random, faults: int = 1, timeout: float = 20.0) -> None:
    """A burst of records (a third of the log shared among the scenario's `faults`), then return as soon as
    the workers committed part of it but not all: the fault lands while they work through a backlog, often
    between a batch's publish and its commit (redelivered ids in the row show it). A restarted worker may
    first wait for the group to drop its killed predecessor (session timeout), hence the timeout."""
    size = len(ctx.feeder.records) // (BURST_SHARE * faults)
    before = ctx.applied_total()
    target = min(len(ctx.feeder.records), ctx.feeder.sent + size)
    ctx.feeder.burst(size)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        applied = ctx.applied_total()
        if applied > before and applied < ctx.feeder.sent:
            break
        if ctx.feeder.sent >= target and applied >= ctx.feeder.sent:  # nothing left to work on
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(rng.uniform(0.0, 0.02))
    ctx.event(f"{ctx.applied_total()} of {ctx.feeder.sent} sent applied")


async def cold_start(ctx: Ctx) -> None:
    """No fault, but the feed starts with the workers (every other scenario waits until they own every
    partition): a fresh group joining while records already flow."""


async def worker_kill9(ctx: Ctx) -> None:
    kills = int(ctx.scenario.params.get("kills", 5))
    rng = random.Random(ctx.scenario.seed)
    for k in range(kills):
        await ctx.feeder.until((k + 1) / (kills + 1))
        await into_batches(ctx, rng, kills)
        ctx.pool.handled.add(0)
        ctx.pool.kill9(0)
        ctx.event(f"kill -9 worker 0 at {ctx.feeder.share:.0%}")
        await asyncio.sleep(0.2)
        ctx.pool.start(0)
        ctx.pool.handled.discard(0)
        await ctx.pool.started(0)


async def rolling_restarts(ctx: Ctx) -> None:
    """Restarts of random workers, SIGTERM and kill -9 alternating in a seeded order, and one SIGSTOP
    longer than the consumer session timeout (its partitions move; on SIGCONT it must be fenced)."""
    rng = random.Random(ctx.scenario.seed)
    restarts = int(ctx.scenario.params.get("restarts", 10))
    stop_s = ctx.scenario.params.get("stop_s", SESSION_TIMEOUT_S + 4)
    stop_after = rng.randrange(2, restarts - 2)
    n = ctx.scenario.workers
    for k in range(restarts):
        await ctx.feeder.until((k + 1) / (restarts + 2))
        await into_batches(ctx, rng, restarts + 1)
        i = rng.randrange(n)
        ctx.pool.handled.add(i)
        if rng.random() < 0.5:
            rc = await ctx.pool.terminate(i)
            ctx.event(f"SIGTERM worker {i} (exit {rc}) at {ctx.feeder.share:.0%}")
        else:
            ctx.pool.kill9(i)
            ctx.event(f"kill -9 worker {i} at {ctx.feeder.share:.0%}")
        ctx.pool.start(i)
        ctx.pool.handled.discard(i)
        await ctx.pool.started(i)
        if k == stop_after:
            await into_batches(ctx, rng, restarts + 1)
            j = rng.randrange(n)
            ctx.pool.handled.add(j)
            ctx.pool.stop_signal(j, signal.SIGSTOP)
            ctx.event(f"SIGSTOP worker {j} for {stop_s:.0f}s at {ctx.feeder.share:.0%}")
            await asyncio.sleep(stop_s)
            ctx.pool.stop_signal(j, signal.SIGCONT)
            ctx.pool.handled.discard(j)


async def broker_kill9(ctx: Ctx) -> None:
    await ctx.feeder.until(0.4)
    ctx.feeder.burst(len(ctx.feeder.records) // (BURST_SHARE * 2))
    await ctx.until_progress()
    await ctx.feeder.pause()  # every record sent so far acknowledged: the producer never resends
    ctx.stack.kill9_kafka()
    ctx.event(f"kill -9 broker at {ctx.feeder.share:.0%}")
    await asyncio.sleep(ctx.scenario.params.get("down_s", 3))
    took = await asyncio.to_thread(ctx.stack.restart_kafka)
    ctx.event(f"broker back after {took:.0f}s")
    ctx.feeder.resume()


async def replicated_broker_kill9(ctx: Ctx) -> None:
    """3 brokers (replication 3, min ISR 2): kill -9 the leader of partition 0 under load, the feed going on
    (unlike broker_kill9, nothing waits for acks first), bring it back after `down_s`. The longest stretch
    without progress while records waited is the pause the worker saw."""
    from tests.chaos.cluster_stack import ClusterStack

    stack = ctx.stack
    assert isinstance(stack, ClusterStack), "replicated_broker_kill9 needs the 3-broker stack"
    await ctx.feeder.until(0.3)
    await into_batches(ctx, random.Random(ctx.scenario.seed), 2)
    node = await asyncio.to_thread(stack.leader_of, ctx.settings.events_topic, 0)
    watch = asyncio.create_task(_longest_stall(ctx))
    stack.kill9_node(node)
    ctx.event(f"kill -9 node {node} (leader of p0) at {ctx.feeder.share:.0%}, {ctx.applied_total()} applied")
    await asyncio.sleep(ctx.scenario.params.get("down_s", 10))
    ctx.event(f"{ctx.applied_total()} of {ctx.feeder.sent} applied with node {node} down")
    took = await asyncio.to_thread(stack.restart_node, node)
    ctx.event(f"node {node} back after {took:.1f}s")
    await _to_the_end(ctx, watch)


async def _to_the_end(ctx: Ctx, watch: asyncio.Task[None]) -> None:
    """The rest of the feed and the workers' progress on it, then the longest stall `watch` saw."""
    await ctx.feeder.until(1.0)
    await ctx.until_progress()
    watch.cancel()
    await asyncio.gather(watch, return_exceptions=True)
    ctx.event(f"longest pause of the workers with records waiting: {ctx.stall_s:.1f}s")


async def _longest_stall(ctx: Ctx) -> None:
    """Sample progress every 0.1 s; keep in ctx.stall_s the longest time nothing new was applied while the
    feed had sent more than was applied."""
    last, since = ctx.applied_total(), time.monotonic()
    while True:
        await asyncio.sleep(0.1)
        now = ctx.applied_total()
        if now != last or now >= ctx.feeder.sent:
            last, since = now, time.monotonic()
        ctx.stall_s = max(ctx.stall_s, time.monotonic() - since)


async def redis_kill9(ctx: Ctx) -> None:
    await ctx.feeder.until(0.4)
    await into_batches(ctx, random.Random(ctx.scenario.seed), 2)
    before = ctx.applied_total()
    ctx.stack.kill9_redis()
    ctx.event(f"kill -9 redis at {ctx.feeder.share:.0%} (applied {before})")
    await asyncio.sleep(ctx.scenario.params.get("down_s", 3))
    took = await asyncio.to_thread(ctx.stack.restart_redis)
    after = ctx.applied_total()
    ctx.event(
        f"redis back after {took:.1f}s, applied {after}"
        + (
            f": AOF everysec lost {before - after} applied offsets (went back in time)"
            if after < before
            else ""
        )
    )


async def redis_rewind(ctx: Ctx) -> None:
    """Redis comes back one second in the past (what AOF everysec allows on an OS crash; a process kill -9
    alone loses nothing already written to the page cache): states, offsets, fences and commit counters
    older than what the workers published and hold in memory."""
    await ctx.feeder.until(0.4)
    await ctx.until_progress()
    ctx.stack.snapshot_redis()
    at = ctx.applied_total()
    await asyncio.sleep(ctx.scenario.params.get("rewind_s", 1.0))
    await ctx.until_progress()
    before = ctx.applied_total()
    ctx.stack.kill9_redis()
    ctx.stack.rewind_redis()
    await asyncio.sleep(ctx.scenario.params.get("down_s", 2))
    await asyncio.to_thread(ctx.stack.restart_redis)
    ctx.event(f"redis killed at {before} applied, back rewound to {ctx.applied_total()} (snapshot at {at})")


async def redis_failover(ctx: Ctx) -> None:
    """Redis Cluster, 3 primaries with a replica each: kill -9 the primary of partition 0's slot under load
    (the feed going on); its replica is promoted (cluster-node-timeout 2 s), possibly without the last
    writes the primary acknowledged; the old primary comes back after `down_s` as a replica."""
    from tests.chaos.redis_cluster_stack import RedisClusterStack

    stack = ctx.stack
    assert isinstance(stack, RedisClusterStack), "redis_failover needs the Redis Cluster stack"
    await ctx.feeder.until(0.3)
    await into_batches(ctx, random.Random(ctx.scenario.seed), 2)
    meta = ctx.keys.partition_meta(0)
    port = await asyncio.to_thread(stack.primary_of, meta)
    replica = None
    frozen = None
    if ctx.scenario.params.get("lose_writes"):  # the replica misses the primary's last commits of p0
        replica = await asyncio.to_thread(stack.cut_replication, port)
        frozen = int(await asyncio.to_thread(stack.read_on_replica, replica, meta, "seq") or 0)
        now = frozen
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and now < frozen + 2:
            await asyncio.sleep(0.05)
            now = int(await asyncio.to_thread(stack.read_on, port, meta, "seq") or 0)
        held = int(await asyncio.to_thread(stack.read_on_replica, replica, meta, "seq") or 0)
        if held != frozen:
            raise RuntimeError(f"the cut did not hold: replica {replica} went from commit {frozen} to {held}")
        ctx.event(f"replication {port} -> {replica} cut: the replica holds p0 commit {frozen}, primary {now}")
    last = int(await asyncio.to_thread(stack.read_on, port, meta, "seq") or 0)
    before = ctx.applied_total()
    watch = asyncio.create_task(_longest_stall(ctx))
    stack.kill9_node(port)
    share = ctx.feeder.share
    ctx.event(f"kill -9 redis node {port} (primary of p0, commit {last}) at {share:.0%}, {before} applied")
    took = await asyncio.to_thread(stack.wait_failover, meta, port)
    promoted = await asyncio.to_thread(stack.primary_of, meta)
    if replica is not None:
        await asyncio.to_thread(stack.mend_replication, replica)
    # read after the workers may already have committed again on the promoted node: informative only
    kept = await asyncio.to_thread(stack.read_on, promoted, meta, "seq")
    ctx.event(f"node {promoted} serves p0 after {took:.1f}s, at commit {kept}, {ctx.applied_total()} applied")
    if frozen is not None and promoted == replica and frozen < last:
        ctx.event(f"p0 went back from commit {last} to {frozen}: acknowledged writes lost with the primary")
    # a process starting now, its URL naming the dead node first (a restarted worker, the API, the CLI)
    fresh = await asyncio.to_thread(_offset_read_by_a_new_client, stack.url_starting_with(port), meta)
    ctx.event(f"a new client, the dead node first in its URL, reads p0's offset {fresh}")
    await asyncio.sleep(ctx.scenario.params.get("down_s", 5))
    back = await asyncio.to_thread(stack.restart_node, port)
    ctx.event(f"node {port} back (a replica now) after {back:.1f}s")
    await _to_the_end(ctx, watch)


def _offset_read_by_a_new_client(url: str, meta: str) -> str | None:
    from streams.store.connection import sync_client

    client = sync_client(url, decode_responses=True, socket_timeout=5)
    try:
        return client.hget(meta, "offset")  # type: ignore[return-value]
    finally:
        client.close()


async def hostile_inputs(ctx: Ctx) -> None:
    """No process fault: the log's malformed share plus the hostile records appended after it."""


FAULTS: dict[str, Callable[[Ctx], Coroutine[Any, Any, None]]] = {
    "baseline": baseline,
    "cold_start": cold_start,
    "worker_kill9": worker_kill9,
    "rolling_restarts": rolling_restarts,
    "broker_kill9": broker_kill9,
    "redis_kill9": redis_kill9,
    "redis_rewind": redis_rewind,
    "hostile_inputs": hostile_inputs,
    "replicated_broker_kill9": replicated_broker_kill9,
    "redis_failover": redis_failover,
}
# on tests.chaos.cluster_stack.ClusterStack (3 brokers), tests.chaos.redis_cluster_stack.RedisClusterStack
CLUSTER_ONLY = ("replicated_broker_kill9", "redis_failover")
NAMES = tuple(n for n in FAULTS if n not in CLUSTER_ONLY)


def suite(names: tuple[str, ...] = NAMES, seeds: int = 5, reduced: bool = False) -> list[Scenario]:
    """The scenarios to run. Reduced (CI, a few minutes): smaller logs, one seed of the rebalance scenario.
    Full: larger logs and `seeds` seeds of rolling_restarts (the scenario that found the loss)."""
    customers, days = (120, 240) if reduced else (300, 365)
    out: list[Scenario] = []
    for name in names:
        if name == "baseline":
            out.append(Scenario(name, 1, feed_s=8 if reduced else 20, customers=customers, days=days))
        elif name == "cold_start":
            out.append(
                Scenario(name, 7, feed_s=8 if reduced else 20, workers=2, customers=customers, days=days)
            )
        elif name == "worker_kill9":
            # A killed consumer holds its partitions until its session times out (~10 s) each time.
            kills = 3 if reduced else 5
            out.append(
                Scenario(name, 2, feed_s=12 * kills, params={"kills": kills}, customers=customers, days=days)
            )
        elif name == "rolling_restarts":
            for seed in range(1 if reduced else seeds):
                out.append(
                    Scenario(
                        name,
                        100 + seed,
                        feed_s=50 if reduced else 100,
                        workers=2 if reduced else 3,
                        params={"restarts": 6 if reduced else 10},
                        customers=customers,
                        days=days,
                    )
                )
        elif name == "broker_kill9":
            out.append(
                Scenario(name, 3, feed_s=10 if reduced else 30, workers=2, customers=customers, days=days)
            )
        elif name == "replicated_broker_kill9":
            out.append(
                Scenario(
                    name,
                    8,
                    feed_s=30 if reduced else 60,
                    workers=2,
                    params={"down_s": 10 if reduced else 20},
                    customers=customers,
                    days=days,
                )
            )
        elif name == "redis_failover":
            # seed 10: the replica misses the primary's last commits (reduced set: that one only)
            for seed, lose in ((9, 0.0), (10, 1.0))[1 if reduced else 0 :]:
                out.append(
                    Scenario(
                        name,
                        seed,
                        feed_s=20 if reduced else 40,
                        workers=2,
                        params={"down_s": 5 if reduced else 10, "lose_writes": lose},
                        customers=customers,
                        days=days,
                    )
                )
        elif name == "redis_kill9":
            out.append(Scenario(name, 4, feed_s=10 if reduced else 30, customers=customers, days=days))
        elif name == "redis_rewind":
            out.append(Scenario(name, 6, feed_s=10 if reduced else 30, customers=customers, days=days))
        elif name == "hostile_inputs":
            out.append(
                Scenario(name, 5, feed_s=6 if reduced else 15, hostile=True, customers=customers, days=days)
            )
        else:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(FAULTS)}")
    return out
