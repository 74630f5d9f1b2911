"""One partition's batch through the commit steps (`BatchPipeline.submit`): decode, apply, publish, commit.

The `Worker` (streams/worker/loop.py) adds what a long-running consumer needs around it: Kafka's poll loop and
rebalances, time-driven changes, the heartbeat and following `segstream promote`; a replay uses it as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Literal, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalStateError

from segmentation import Definitions
from segmentation.events import Event
from streams.settings import Settings
from streams.store.counters import Metrics
from streams.store.port import Claim, StateStore, WriteBatch
from streams.store.writes import Known
from streams.topics.deadletter import DeadLetter
from streams.topics.publish import publish_outcome
from streams.worker.batch import STEP, BatchResult, Incoming, apply_steps, customers_of, decode
from streams.worker.fenced_commit import commit_batch
from streams.worker.future_limit import FutureLimit, worker_limit
from streams.worker.mode_guard import applied_settings
from streams.worker.namespace_follow import NamespaceFollow
from streams.worker.offset_order import in_order
from streams.worker.ownership import Owned
from streams.worker.progress_report import report, retire
from streams.worker.retry import retry
from streams.worker.standing import starting_states

log = logging.getLogger("segstream.worker")
T = TypeVar("T")


class BatchPipeline:
    """A worker's partitions, their batches in flight and the steps each batch goes through."""

    def __init__(
        self,
        settings: Settings,
        definitions: Definitions,
        store: StateStore,
        producer: AIOKafkaProducer | None,
        consumer: AIOKafkaConsumer | None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: Metrics | None = None,
        dead_letter_sink: Callable[[list[DeadLetter]], Awaitable[None]] | None = None,
        follow: NamespaceFollow | None = None,
    ) -> None:
        """Without a producer (a replay that does not emit), dead letters go to dead_letter_sink instead.
        With `follow`, the worker moves to the namespace `segstream promote` makes active."""
        self.settings = settings
        self.definitions = definitions
        self.store = store
        self.producer = producer
        self.consumer = consumer
        self.wall_clock = wall_clock
        self.metrics = metrics or Metrics()
        self.dead_letter_sink = dead_letter_sink
        self.follow = follow
        self.owned: dict[int, Owned] = {}
        self.ownership = asyncio.Lock()  # see ownership.Holder
        self.reassigning = False  # see ownership.Holder: `consumer.assignment()` is not to be acted on
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()  # steps 4-7 in flight, any partition
        self.retake: set[int] = set()  # partitions to claim again: Redis lost writes (see `_commit`)
        self.fenced_since: dict[int, float] = {}  # partition -> monotonic time a newer owner fenced us out
        self.future_limit: Callable[[], FutureLimit | None]  # replaced by `replay --reject-future`
        self.future_limit = lambda: worker_limit(self.settings, self.wall_clock())

    async def own(self, partition: int) -> Claim:
        """Claim the partition in Redis, fencing out any earlier owner; processing may start after it."""
        claim = await self._retry(lambda: self.store.claim(partition), "claim partition")
        swept = claim.swept_us
        self.owned[partition] = Owned(claim, claim.offset, claim.watermark_us, marked_us=swept, owed_us=swept)
        return claim

    async def process(self, partition: int, records: Sequence[Incoming]) -> None:
        """Apply and commit one partition's batch (`submit`, then wait until its steps 4-7 are done)."""
        await self.submit(partition, records)
        owned = self.owned.get(partition)
        if owned is not None:
            await self._settle(owned)

    async def drain(self) -> None:
        """Wait until every batch in flight is published and committed; raise the first failure; then
        report the partitions' final offsets and metrics."""
        for owned in list(self.owned.values()):
            await self._settle(owned)
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        self._raise_failures()
        for partition, owned in list(self.owned.items()):
            await self.report(partition, owned)

    async def submit(
        self, partition: int, records: Sequence[Incoming], fetched_for: Owned | None = None
    ) -> None:
        """One partition's batch, committed in this order (with `fetched_for`, only if the partition's
        owner is still the one the records were fetched for: a claim completed meanwhile sought back to
        Redis's offset, and what was fetched before that seek must never reach the new owner):

        0. A partition just claimed first makes the sweep an earlier owner marked (`sweep_mark.pay_owed`).
        1. Drop records at or below the partition's applied offset (redeliveries after a rebalance or a
           retry): their effect is already in Redis, applying them again would count them twice. (Or
           at or below the offset of the batch in flight, whose effect is about to be.) A consumed batch
           is applied only when it starts exactly after that offset (`in_order`); anything else (a batch
           fetched before the claim's seek, say) is never applied: seek back and fetch again.
        2. Decode, then load from Redis in one round trip the states this worker does not hold. A record
           not keyed by its customer id, or (live) dated later than its record's time plus
           SEGSTREAM_MAX_FUTURE_SKEW_S (`future_limit`), is a dead letter: it never reaches a state.
        3. Apply the pure core in log order (no I/O); an event that fails becomes a dead letter here, so an
           exception can never make us skip an event silently (Faust's ack-on-exception hazard).
        4. Publish transitions and dead letters and wait for every ack (acks=all, idempotent producer).
           Before the state commit: if we crash after this step, the batch is applied again from the stored
           offset and the same transitions (same ids) are published again: at least once, never lost.
        5. Commit states, due times, the read-side indexes (membership, per-segment KPIs, day flows) and
           the customers' capped transition history, the offset and the watermark in one fenced Lua script.
           Only now is the batch done; a worker fenced out by a newer owner writes nothing and forgets the
           partition.
        6. Update the in-memory cache and progress, then tell Kafka the offset (for lag monitoring only:
           Redis, not Kafka, is where we resume from; at most every REPORT_INTERVAL_S, see `report`).
        7. Publish the worker's counters and this partition's lag to the namespace's metrics hash (one
           HSET, outside the commit; best effort: a failure is logged, never retried or raised; at most
           every REPORT_INTERVAL_S too).

        Steps 1-3 run here; steps 4-7 run in a task, so that while they wait for Kafka and Redis the
        worker decodes and applies the next batches (pure CPU). Per partition there is at most one task:
        steps 1-3 of batch N+1 may run while steps 4-7 of batch N are in flight, but steps 4-7 of N+1
        start only once those of N are done, so publications and commits keep the log order. Batch N+1
        is applied to the states batch N produced (`inflight_states`), exactly as if N were committed;
        if N is fenced out, N+1 is dropped with it (nothing is written); if N fails, N+1 fails too and
        the worker stops (the stored offset is before N: both are applied again on restart).
        A sweep (and `process`, `drain`, a revocation) first waits for the partition's task.
        """
        owned = self.owned.get(partition)
        if owned is None or (fetched_for is not None and owned is not fetched_for):
            return
        if owned.owed_us is not None and not await self._pay_owed(partition, owned):
            return  # lost in the sweep an earlier owner marked (`sweep_mark`): fetched again by the next
        done = owned.offset if owned.prepared is None else owned.prepared
        if done is not None and records and records[0].offset <= done:
            records = [r for r in records if r.offset > done]
        topic, first = self.settings.events_topic, records[0].offset if records else 0
        if not records or not in_order(self.consumer, topic, owned, done, first, self.metrics.retry):
            return
        started = time.perf_counter()
        decoded: tuple[list[tuple[Incoming, Event]], list[DeadLetter]] = ([], [])
        limit = self.future_limit()
        for start in range(0, len(records), STEP):  # pausing lets the batch in flight progress
            events, dead = decode(records[start : start + STEP], limit, self.settings.topic_partitions)
            decoded[0].extend(events)
            decoded[1].extend(dead)
            if start + STEP < len(records):  # not after the last part: loading the states pauses anyway
                await asyncio.sleep(0)
        stored = await self._states(partition, owned, customers_of(decoded[0]))
        if stored is None:  # another owner moved the partition on, or Redis went back: apply nothing
            return
        explain = self.producer is not None  # whys only when published (format 2 keeps no past why)
        steps = apply_steps(records, decoded, stored, self.definitions, self.settings.history_size, explain)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                result: BatchResult = done.value
                break
            await asyncio.sleep(0)
        await self._settle(owned)  # steps 4-7 of the previous batch: at most one batch in flight
        if self.owned.get(partition) is not owned or owned.released:  # fenced out or revoked meanwhile
            return  # drop this batch: its records are fetched again by the next owner
        owned.prepared = result.last_offset
        owned.inflight_states = result.states
        task = asyncio.create_task(self._finish(partition, owned, records, result, started))
        owned.inflight = task
        self._tasks.add(task)
        task.add_done_callback(self._forget)

    async def _finish(
        self, partition: int, owned: Owned, records: Sequence[Incoming], result: BatchResult, started: float
    ) -> None:
        """Steps 4-7 of `submit`'s batch."""
        await self._publish(result)
        if not await self._commit(owned, result, result.last_offset, result.watermark_us):
            return
        owned.remember(result.states, self.cache_share())
        owned.offset = result.last_offset
        if result.watermark_us is not None:
            owned.watermark_us = max(result.watermark_us, owned.watermark_us or result.watermark_us)
        seconds, dead = time.perf_counter() - started, len(result.dead_letters)
        self.metrics.batch(len(records), len(result.transitions), dead, seconds, result.duplicates)
        if time.monotonic() >= owned.next_report:
            await self.report(partition, owned)

    def stated(self) -> tuple[str, str]:
        """The mode and `applied_settings` its reports and keep-alives state (`mode_guard`)."""
        return self.settings.mode, applied_settings(self.settings)  # a promote replaces the settings

    async def report(self, partition: int, owned: Owned) -> None:
        """Steps 6 and 7 of `submit` (see `progress_report.report`)."""
        topic, (mode, applies) = self.settings.events_topic, self.stated()
        await report(self.consumer, self.store, self.metrics, topic, partition, owned, mode, applies)

    async def _settle(self, owned: Owned) -> None:
        """Wait for the partition's batch in flight; its failure is raised here."""
        task = owned.inflight
        if task is None:
            return
        if task.done():  # the usual case at a low rate: no shield (a future and two callbacks) to make
            owned.inflight, owned.inflight_states = None, {}
            task.result()  # its failure, raised here
            return
        try:
            await asyncio.shield(task)
        finally:
            if owned.inflight is task and task.done():
                owned.inflight, owned.inflight_states = None, {}

    def _forget(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:  # a failure stays until it is raised
            self._tasks.discard(task)

    def _raise_failures(self) -> None:
        for task in list(self._tasks):
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    # -- steps ---------------------------------------------------------------------------------------
    async def _states(self, partition: int, owned: Owned, customer_ids: list[str]) -> dict[str, Known] | None:
        """The states a batch or a sweep starts from (see `standing.starting_states`), or None when we may
        no longer write the partition (it is then forgotten and paused)."""
        states = await starting_states(
            self.store, owned, customer_ids, self.metrics.retry, self.settings.retry_max_backoff_s
        )
        if isinstance(states, str):
            self._lose(owned, states)
            return None
        return states

    async def _publish(self, result: BatchResult) -> None:
        if not result.transitions and not result.dead_letters:  # most small batches: nothing to send
            return
        producer = self.producer
        if producer is None:  # a replay that was not asked to emit transitions
            if result.dead_letters:
                if self.dead_letter_sink is None:
                    raise RuntimeError("dead letters but nowhere to put them: refusing to drop them")
                await self.dead_letter_sink(result.dead_letters)
            return

        settings = self.settings
        await self._retry(
            lambda: publish_outcome(
                producer,
                settings.transitions_topic,
                settings.dlq_topic,
                result.transitions,
                result.dead_letters,
                settings.dlq_max_value_bytes,
            ),
            "publish transitions and dead letters",
        )

    async def _commit(
        self, owned: Owned, result: BatchResult, offset: int | None, watermark: int | None
    ) -> bool:
        """Step 5 (see `fenced_commit`). Not committed, the partition is forgotten and paused: fenced out,
        until Kafka assigns it again (or `fenced_grace_s` passed, see `Worker.heartbeat`); rewound, until the
        poll loop claims it again (`retake`)."""
        batch = WriteBatch(result.writes, result.index)
        outcome = await commit_batch(
            self.store, owned, batch, offset, watermark, self.metrics.retry, self.settings.retry_max_backoff_s
        )
        if outcome == "committed":
            return True
        self._lose(owned, outcome)
        return False

    def _lose(self, owned: Owned, outcome: Literal["fenced", "rewound"]) -> None:
        """Forget and pause a partition we may no longer write: fenced out, until Kafka assigns it again (or
        `fenced_grace_s` passed, see `Worker.heartbeat`); rewound, until the poll loop claims it again."""
        partition = owned.claim.partition
        current = self.owned.get(partition)
        self.metrics.retry(outcome)
        if current is not None and current is not owned:  # our own newer claim fenced this one out: it
            return  # sought to Redis's offset and resumed; pausing it would stall it until the next rebalance
        if current is owned:
            self.owned.pop(partition)
        if self.consumer is None:  # a replay: it stops with an error once it sees the partition gone
            return
        if outcome == "fenced":
            self.fenced_since.setdefault(partition, time.monotonic())
        else:
            self.retake.add(partition)
        with contextlib.suppress(IllegalStateError):  # revoked meanwhile
            self.consumer.pause(TopicPartition(self.settings.events_topic, partition))

    async def retire(self) -> None:
        """This process stops writing the namespace: its metrics retire (`progress_report.retire`)."""
        await retire(self.store, self.metrics)

    async def _pay_owed(self, partition: int, owned: Owned) -> bool:
        """Step 0 of `submit` (`Worker`: `sweep_mark.pay_owed`); a pipeline that never sweeps owes nothing."""
        return self.owned.get(partition) is owned

    def cache_share(self) -> int:
        """A partition's share of SEGSTREAM_STATE_CACHE_SIZE: the bound is per process, so a worker's memory
        does not grow with the number of partitions it happens to own."""
        return self.settings.state_cache_size // max(1, len(self.owned))

    async def _retry(self, action: Callable[[], Awaitable[T]], what: str) -> T:
        """Redis or Kafka unavailable: wait and try again, never move past an unapplied event."""
        return await retry(action, what, self.metrics.retry, self.settings.retry_max_backoff_s)
