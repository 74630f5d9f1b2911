"""The streaming updater: Kafka batches in, Redis state and transitions out, effectively once.

Faust's per-event agent path (and its ack-on-exception and concurrency>1 offset hazards, BRIEF section 4)
is not on the hot path: one asyncio task polls aiokafka in batches, applies the pure core per partition
(`streams.worker.pipeline`), and keeps the authoritative offset in Redis next to the state it produced.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from aiokafka import ConsumerRebalanceListener, TopicPartition

from segmentation.instants import to_us
from streams.store.definitions_record import DefinitionsRecord
from streams.store.namespaces import NamespaceRefused
from streams.topics.partition_count import refuse_assigned
from streams.worker import realign
from streams.worker.catch_up import caught_up, end_offsets, live_clock
from streams.worker.concurrent_partitions import submit_at_once
from streams.worker.idle_check import report_idle
from streams.worker.namespace_follow import DefinitionsMismatch, check_claim
from streams.worker.ownership import Owned, Rebalance
from streams.worker.pipeline import BatchPipeline
from streams.worker.progress_log import ProgressLog, total_lag
from streams.worker.promote_follow import follow
from streams.worker.sweep_mark import paid, pay_owed, sweep_to

log = logging.getLogger("segstream.worker")
GC_THRESHOLDS = (50_000, 20, 10)
"""Cyclic GC thresholds while `run` runs. The hot path allocates millions of short-lived, acyclic objects
(events, states, mappings) and CPython's default (700, 10, 10) collects, and rescans the states held in
the caches, every few dozen events: ~20% of the worker's CPU on the benchmark (3.3 s -> 2.6 s per 100k
events). Full collections still run, every ~10M allocations and by CPython's 25%-growth rule."""


class FencedStall(RuntimeError):
    """Fenced out of a partition Kafka still assigns to this worker, for longer than `fenced_grace_s`: some
    other process writes it (or wrote it: a forced `definitions apply`). Sitting paused would make no progress
    without a word; exiting lets the supervisor restart the worker, whose claim then fences the other out."""


class Worker(BatchPipeline):
    """The pipeline driven by a Kafka consumer, by time, and by the active-namespace pointer."""

    beyond: frozenset[int] = frozenset()  # assigned partitions >= SEGSTREAM_TOPIC_PARTITIONS (see `take_all`)
    recorded: DefinitionsRecord | None = None  # the namespaces' definitions versions (`_definitions_allow`)
    refused: DefinitionsMismatch | NamespaceRefused | None = None  # a claim refused: `heartbeat` raises it
    rewritten: Callable[[str], Awaitable[None]] | None = None  # refuses a namespace being rewritten
    listener_failure: Exception | None = None  # what a rebalance callback raised (`Rebalance`): raised too

    # -- partition ownership -------------------------------------------------------------------------
    def listener(self) -> ConsumerRebalanceListener:
        """Kafka's assignments drive ownership: taken partitions are claimed, revoked ones let go."""
        return Rebalance(self)

    def hold(self, tps: Iterable[TopicPartition]) -> None:
        """Pause newly assigned partitions until `take` has claimed them and sought to Redis's offset."""
        if self.consumer is not None:
            self.consumer.pause(*tps)

    async def take_all(self, tps: Sequence[TopicPartition]) -> None:
        """Own a new assignment: its end offsets asked once, before any of it resumes, then each partition
        taken. Kafka answers one connection's requests in order, so a question asked after a partition was
        resumed waits for that partition's long-poll fetch (up to kafka_fetch_max_wait_ms): asked per
        partition, a 16-partition assignment took 6 s to resume (tests/integration/test_worker_assignment)."""
        beyond = {tp.partition for tp in tps if tp.partition >= self.settings.topic_partitions}
        if beyond:  # partitions added to the topic: they stay paused, `heartbeat` stops the worker
            self.beyond = self.beyond | beyond
            tps = [tp for tp in tps if tp.partition not in beyond]
        ends = await self._end_offsets(tps)
        for tp in [t for t in tps if t not in ends]:  # one unknown leader must not cost the others their
            ends.update(await self._end_offsets([tp]))  # catch-up: asked alone (as before), before resuming
        for tp in tps:
            await self.take(tp, ends)

    async def _end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        assert self.consumer is not None, "end offsets are for a worker that consumes Kafka"
        return await end_offsets(self.consumer, tps)

    async def take(self, tp: TopicPartition, ends: Mapping[TopicPartition, int] | None = None) -> None:
        """Own the partition and make the consumer resume right after the offset stored in Redis (`ends`:
        the end offsets of its assignment, when `take_all` asked them already)."""
        assert self.consumer is not None, "take() is for a worker that consumes Kafka"
        if ends is None:
            ends = await self._end_offsets([tp])
        if not await self._definitions_allow():  # stays paused, fencing nobody; `heartbeat` stops the worker
            return
        walk = None if self.recorded is None else await realign.pending(self, self.recorded, tp.partition)
        claim = await self.own(tp.partition)
        owned, end = self.owned[tp.partition], ends.get(tp)
        # before any await: the poll loop's sweep must not find it caught up and sweep it by the wall clock,
        # nor pay the claim's mark without the walk (`realign.begin`)
        owned.end_unknown = end is None  # not caught up until known (`catch_up.caught_up`)
        owned.catch_up_to = end - 1 if end else None
        owned.taking = True  # no sweep until the definitions are checked again: it would walk with stale ones
        realign.begin(self, owned, walk)
        if not await self._definitions_allow():  # a forced `definitions apply` recorded its version meanwhile
            self.owned.pop(tp.partition, None)
            await self._retry(lambda: self.store.release(claim), "release partition")
            return
        if self.owned.get(tp.partition) is not owned:  # lost meanwhile (the poll loop's idle check):
            return  # `_lose` paused and flagged it (`fenced_since` / `retake`); resuming it would stall it
        owned.taking = False
        self.fenced_since.pop(tp.partition, None)
        self.retake.discard(tp.partition)
        # Offset 0 for a partition never applied: where retention removed it, the consumer resets to the
        # log start and `in_order` accepts that gap once fetched twice.
        self.consumer.seek(tp, 0 if claim.offset is None else claim.offset + 1)
        self.consumer.resume(tp)  # paused since its assignment (`hold`), or since we were fenced out of it
        log.info(
            "partition %s taken: fence %s, resume after offset %s", tp.partition, claim.fence, claim.offset
        )

    async def _definitions_allow(self) -> bool:
        """`definitions_rule` at every claim, not only at start-up and on a promote: a worker fenced out by a
        forced `definitions apply`, and assigned the partition again, must not move its customers back. A
        claim never adopts (SEGSTREAM_ADOPT_DEFINITIONS acts at start-up and on a promote): a namespace moved
        to other definitions while this worker ran was moved by a later decision, and two adopting workers
        must not move it back and forth. The refusal is kept for `heartbeat`: raised in the rebalance
        listener, aiokafka would only log it."""
        recorded, namespace = self.recorded, self.settings.namespace
        if recorded is None or namespace is None or self.refused is not None:
            return self.refused is None
        mine, rewritten = self.definitions.version, self.rewritten

        async def checks() -> None:  # first, a drop begun after the start-up check, before any report of ours
            if rewritten is not None:
                await rewritten(namespace)
            await check_claim(recorded, namespace, mine, False)

        try:  # one operation for the monitoring (`metrics_hash.OPERATIONS`, its alert)
            await self._retry(checks, "check definitions")
        except (DefinitionsMismatch, NamespaceRefused) as exc:
            self.refused = exc
        return self.refused is None

    # -- main loop -----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Graceful stop: the batch in hand is finished, published and committed first."""
        self._stopping.set()

    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Poll, apply, sweep, report, follow promote, until `stop`.

        aiokafka runs the rebalance listener in its own task, so ownership may change at any await here.
        Each await, and why no event can be skipped or applied twice across it:
        1. `getmany`: records of partitions not (yet) claimed are dropped; their claim seeks back to Redis's
           offset, and a new assignment is paused until then (`hold`).
        2. `submit_at_once` (per partition, concurrently: the owed sweep of a partition just claimed
           (`sweep_mark.pay_owed`), decode, `_states`, apply, `_settle`): a batch is
           applied only if the partition's owner is the one it was fetched for, starts right after the
           applied offset (`in_order`), and is dropped after its awaits if the partition was let go meanwhile;
           a revocation waits for the batch in flight (`Rebalance._let_go`) and every commit carries the
           claim's fence.
        3. `sweep`: per partition (a partition just claimed first pays its owed sweep), stops as soon as the
           partition is no longer owned by the same claim; its commit is fenced like any other.
        4. `heartbeat` / `report` / `progress.tick`: progress only (Kafka offsets for lag, the metrics hash,
           the operator's log lines), never the truth.
        5. `follow_promote`, `_take_again`: under the ownership lock, so no rebalance interleaves; each
           `take` seeks to the stored offset and replaces the partition's `Owned`.
        """
        assert self.consumer is not None, "run() needs a Kafka consumer"
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        progress = ProgressLog(self.settings.progress_interval_s, self.metrics)
        try:
            while not self._stopping.is_set():
                batches = await self.consumer.getmany(
                    timeout_ms=self.settings.batch_max_ms, max_records=self.settings.batch_max_events
                )
                # Who owned each partition when its records came: a claim (a rebalance callback) may complete
                # while an earlier partition's batch awaits, and a batch fetched before that claim's seek must
                # never reach the new owner (it may start far beyond the stored offset).
                await submit_at_once(
                    self.submit,
                    [
                        (tp.partition, messages, self.owned.get(tp.partition))
                        for tp, messages in batches.items()
                    ],
                )
                self._raise_failures()
                await self._take_again()
                await self.sweep()
                await self.heartbeat()
                await progress.tick(self.owned, self._caught_up, self._lag)
                await self.follow_promote()
            async with self.ownership:  # a revocation's report never interleaves with `retire` (ownership)
                await self.drain()
                self.owned.clear()  # a revocation during shutdown must not report after `retire`
                await self.retire()
            progress.stopped()
        finally:
            gc.set_threshold(*thresholds)
            for task in list(self._tasks):  # only left on an error: like a crash, Redis has the truth
                task.cancel()

    async def _take_again(self) -> None:
        """Claim again the partitions whose commit found Redis behind our claim (it lost writes): resume from
        what Redis holds, with an empty cache (ours is ahead of it)."""
        if not self.retake or self.consumer is None:
            return
        async with self.ownership:
            if self.reassigning:  # the assign callback takes what is ours (and `take` drops it from retake)
                return
            assigned = self.consumer.assignment()
            # one at a time, each off the set before its `take` awaits: a partition another batch finds
            # rewound meanwhile is added to it and claimed in this loop too (a `clear()` after dropped it)
            while self.retake:
                partition = min(self.retake)
                self.retake.discard(partition)
                tp = TopicPartition(self.settings.events_topic, partition)
                if tp in assigned and partition not in self.owned:
                    await self.take(tp)

    async def heartbeat(self) -> None:
        """Idle partitions report too (at most every REPORT_INTERVAL_S): lag stays current, and
        `definitions apply` can tell that a worker is running from the metrics hash. A partition we were
        fenced out of and Kafka still assigns to us for `fenced_grace_s` stops the worker (`FencedStall`);
        so does one beyond SEGSTREAM_TOPIC_PARTITIONS (`PartitionCountChanged`), before any of it applies, and
        a rebalance callback that failed (a claim Redis refused: its partition was left paused, unclaimed)."""
        now = time.monotonic()
        if self.refused is not None:
            raise self.refused
        if self.listener_failure is not None:
            raise self.listener_failure
        if self.beyond:  # the topic's count as the consumer's metadata knows it, for the advice
            topic, consumer = self.settings.events_topic, self.consumer
            count = len((consumer and consumer.partitions_for_topic(topic)) or ()) or max(self.beyond) + 1
            raise refuse_assigned(topic, set(self.beyond), self.settings.topic_partitions, count)
        if self.fenced_since and self.consumer is not None:
            assigned = {tp.partition for tp in self.consumer.assignment()}
            for partition, since in list(self.fenced_since.items()):
                if partition not in assigned or partition in self.owned:
                    del self.fenced_since[partition]
                elif now - since > self.settings.fenced_grace_s:
                    raise FencedStall(
                        f"fenced out of partition {partition} {now - since:.0f} s ago and still assigned to "
                        "this worker: another process writes it; exiting so a restart claims it again"
                    )
        await report_idle(self, now)  # each checked still ours first: Redis may lose writes of a quiet one

    async def follow_promote(self) -> None:
        """The active namespace moved: follow it (`promote_follow.follow`)."""
        await follow(self, self.take_all)

    def _lag(self) -> int | None:
        return total_lag(self.owned)

    async def _pay_owed(self, partition: int, owned: Owned) -> bool:
        """The mark's sweep, then a pending adoption walk whole at the mark (`realign.pay`), then the mark
        cleared (`sweep_mark.paid`)."""
        clock_us, owned.paying = owned.owed_us, True
        try:
            if not await pay_owed(self, partition, owned):
                return False
            if clock_us is not None and owned.realign is not None and self.recorded is not None:
                await realign.pay(self, self.recorded, owned, clock_us)
        finally:
            owned.paying = False
        return await paid(self, partition, owned)

    async def _caught_up(self, partition: int, owned: Owned) -> bool:
        """`catch_up.caught_up` for one of our partitions (`Owned.caught_up` without a consumer)."""
        if self.consumer is None:
            return owned.caught_up()
        tp = TopicPartition(self.settings.events_topic, partition)
        return await caught_up(self.consumer, tp, owned, self.settings.batch_max_events)

    async def _anything_due(self, partition: int, owned: Owned) -> bool:
        """Live, with a batch in flight: is any customer due by the wall clock? Most sweeps find nobody, and
        waiting for the batch first (`_settle`) held the poll loop up for its publish and commit once per
        partition and sweep interval. What the batch in flight makes due is in the future (live events are
        dated about now), so none is missed; replay and a forced sweep always settle first."""
        if self.settings.mode != "live" or owned.inflight is None or owned.inflight.done():
            return True
        clock_us = to_us(self.wall_clock())  # a live sweep's clock is never later (`catch_up.live_clock`)
        due = await self._retry(lambda: self.store.due(partition, clock_us, 1), "read due index")
        return bool(due)

    async def sweep(self, force: bool = False) -> None:
        """Time-driven changes of the owned partitions: clock = event-time watermark in replay mode, the wall
        clock live (`catch_up.live_clock`). Cost follows the number of due customers, not the population."""
        now = time.monotonic()
        for partition, owned in list(self.owned.items()):
            if owned.taking:  # `take` awaits between its claim and its resume: swept once resumed
                continue
            if owned.owed_us is not None and not await self._pay_owed(partition, owned):
                continue
            if not force and now < owned.next_sweep:
                continue
            if not force and owned.realign is None and not await self._anything_due(partition, owned):
                owned.next_sweep = now + self.settings.sweep_interval_ms / 1000
                continue
            await self._settle(owned)
            owned.next_sweep = now + self.settings.sweep_interval_ms / 1000
            clock_us = owned.watermark_us
            if self.settings.mode == "live":  # never past the wall clock (`catch_up.live_clock`)
                clock_us = live_clock(clock_us, self.wall_clock(), await self._caught_up(partition, owned))
            if clock_us is None:
                continue
            await sweep_to(self, partition, owned, clock_us)
            if owned.realign is not None and self.recorded is not None:
                await realign.step(self, self.recorded, owned, clock_us, force)
