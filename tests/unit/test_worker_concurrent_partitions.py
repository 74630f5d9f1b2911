"""The partitions of one poll go through steps 1-3 at once (`BatchPipeline.submit_all`), and nothing of that
concurrency skips, repeats or stalls a partition. Each interleaving is forced at the await where it happens
(a hook in the store's `load`), never left to timing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from aiokafka import TopicPartition

from segmentation import Definitions
from streams.store.port import Claim, CustomerWrite, InMemoryStateStore
from streams.worker.loop import Worker
from tests.unit.test_worker_rebalance import (
    T0,
    TOPIC,
    LogConsumer,
    expected_customers,
    log_of,
    settings,
    stop_when,
    stored_customers,
)


class HookedStore(InMemoryStateStore):
    """`on_load(partition, n)` runs before the n-th load of that partition (1-based) answers."""

    def __init__(self, on_load: Callable[[int, int], Awaitable[None]]) -> None:
        super().__init__()
        self.on_load = on_load
        self.loads: dict[int, int] = {}

    async def load(
        self, partition: int, customer_ids: Sequence[str], claim: Claim | None = None
    ) -> dict[str, dict[str, str]]:
        self.loads[partition] = self.loads.get(partition, 0) + 1
        await self.on_load(partition, self.loads[partition])
        return await super().load(partition, customer_ids, claim)


def two_partitions(store: InMemoryStateStore, per_fetch: int = 10) -> tuple[LogConsumer, Worker, dict]:  # type: ignore[type-arg]
    logs = {0: log_of(0, range(40)), 1: log_of(1, range(40))}
    consumer = LogConsumer(logs)
    consumer.per_fetch = per_fetch
    worker = Worker(settings(), Definitions.default(), store, None, consumer)
    consumer.assign([TopicPartition(TOPIC, p) for p in logs])
    return consumer, worker, logs


def test_the_partitions_of_one_poll_load_at_the_same_time() -> None:
    """Partition 0's load answers only once partition 1's load of the same poll has started: one after the
    other, the poll would never finish (each partition's wait on Redis would add to the cycle)."""
    started_1 = asyncio.Event()

    async def on_load(partition: int, n: int) -> None:
        if partition == 1:
            started_1.set()
        elif n == 1:
            try:
                await asyncio.wait_for(started_1.wait(), 2.0)
            except TimeoutError:  # not an outage: the worker stops with it
                raise ValueError("partition 1 did not load while partition 0 waited") from None

    async def scenario() -> tuple[InMemoryStateStore, dict]:  # type: ignore[type-arg]
        store = HookedStore(on_load)
        consumer, worker, logs = two_partitions(store)
        await worker.listener().on_partitions_assigned(consumer.assignment())
        await asyncio.gather(worker.run(), stop_when(worker, store, {0: 39, 1: 39}))
        return store, logs

    store, logs = asyncio.run(scenario())
    for p in (0, 1):
        assert stored_customers(store, p) == expected_customers(logs[p])


def test_a_partition_claimed_again_while_its_batch_loads_is_not_paused_by_the_old_claim() -> None:
    """Partition 1 is revoked and assigned to this worker again while its batch's load waits: the load (of
    the old claim) is refused, the batch is dropped, and the new claim, which sought back to Redis's offset,
    applies every event exactly once; it must not be paused for the old claim's refusal."""
    reached, release = asyncio.Event(), asyncio.Event()

    async def on_load(partition: int, n: int) -> None:
        if partition == 1 and n == 2:
            reached.set()
            await release.wait()

    async def scenario() -> tuple[InMemoryStateStore, Worker, LogConsumer, dict]:  # type: ignore[type-arg]
        store = HookedStore(on_load)
        consumer, worker, logs = two_partitions(store)
        listener = worker.listener()
        await listener.on_partitions_assigned(consumer.assignment())

        async def rebalance() -> None:
            await reached.wait()
            tp = TopicPartition(TOPIC, 1)
            await listener.on_partitions_revoked([tp])
            await listener.on_partitions_assigned([tp])
            release.set()

        await asyncio.gather(worker.run(), stop_when(worker, store, {0: 39, 1: 39}, timeout=3), rebalance())
        return store, worker, consumer, logs

    store, worker, consumer, logs = asyncio.run(scenario())
    for p in (0, 1):
        assert stored_customers(store, p) == expected_customers(logs[p])
    assert worker.metrics.retries["fenced"] == 1  # the old claim's load, refused
    assert not consumer.paused and not worker.fenced_since


def test_a_failure_in_one_partition_cancels_the_others_and_is_raised_as_is() -> None:
    """Partition 0's load fails for good (not an outage) while partition 1's waits: the worker stops with
    that error itself (not an exception group), partition 1's steps are cancelled, and nothing is left
    running or committed for it."""
    blocked = asyncio.Event()

    async def on_load(partition: int, n: int) -> None:
        if partition == 1:
            blocked.set()
            await asyncio.Event().wait()  # forever, unless cancelled
        await blocked.wait()
        raise ValueError("stored state unreadable")

    async def scenario() -> tuple[str, InMemoryStateStore, int]:
        store = HookedStore(on_load)
        consumer, worker, _ = two_partitions(store)
        await worker.listener().on_partitions_assigned(consumer.assignment())
        try:
            await asyncio.wait_for(worker.run(), 3.0)
        except ValueError as exc:
            message = str(exc)
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return message, store, len(others)

    message, store, left = asyncio.run(scenario())
    assert message == "stored state unreadable"
    assert store._p(0).offset is None and store._p(1).offset is None
    assert left == 0


class GatedCommits(InMemoryStateStore):
    """Commits after the first `free` wait for `gate`; `order` records when commits and sweeps finish."""

    def __init__(self, free: int) -> None:
        super().__init__()
        self.free, self.gate, self.order = free, asyncio.Event(), list[str]()

    async def commit(
        self, claim: Claim, offset: int | None, watermark_us: int | None, writes: Sequence[CustomerWrite]
    ) -> None:
        if self.free <= 0:
            await self.gate.wait()
        self.free -= 1
        await super().commit(claim, offset, watermark_us, writes)
        self.order.append(f"commit {offset}")


def sweep_with_a_batch_in_flight(days_later: int) -> tuple[list[str], GatedCommits]:
    """A live worker commits offsets 0-9, then the commit of 10-19 waits while a sweep runs at the wall
    clock `days_later` days after the events."""
    log = log_of(0, range(20))

    async def scenario() -> GatedCommits:
        store = GatedCommits(free=1)
        now = T0 + timedelta(days=days_later)
        live = settings().model_copy(update={"mode": "live"})
        worker = Worker(live, Definitions.default(), store, None, None, wall_clock=lambda: now)
        await worker.own(0)
        await worker.process(0, log[:10])
        await worker.submit(0, log[10:])  # its commit waits for the gate
        sweep = asyncio.create_task(worker.sweep())
        await asyncio.wait({sweep}, timeout=0.2)
        store.order.append("sweep done" if sweep.done() else "sweep waiting")
        store.gate.set()
        await sweep
        await worker.drain()
        return store

    store = asyncio.run(scenario())
    return store.order, store


def test_a_live_sweep_with_nobody_due_does_not_wait_for_the_batch_in_flight() -> None:
    order, store = sweep_with_a_batch_in_flight(days_later=1)
    assert order == ["commit 9", "sweep done", "commit 19"]
    assert store._p(0).offset == 19


def test_a_live_sweep_with_customers_due_waits_for_the_batch_in_flight_first() -> None:
    """A year later every customer is due: the sweep settles the batch first, then moves them on."""
    order, store = sweep_with_a_batch_in_flight(days_later=400)
    assert order[:3] == ["commit 9", "sweep waiting", "commit 19"]
    assert order[3:] == ["commit None"] * (len(order) - 3) and len(order) > 3  # the sweep's own commits
    assert store._p(0).offset == 19
