"""Following `segstream promote`: a worker started without SEGSTREAM_NAMESPACE moves to the namespace made
active, resuming there after the offsets that namespace stores."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import TopicPartition

from streams.worker.namespace_follow import DefinitionsMismatch, definitions_rule
from streams.worker.pipeline import BatchPipeline

log = logging.getLogger("segstream.worker")


async def follow(
    worker: BatchPipeline, take_all: Callable[[Sequence[TopicPartition]], Awaitable[None]]
) -> None:
    """The active namespace moved (`segstream promote`): finish and commit what is in flight in the old
    namespace, then own every assigned partition again in the new one, resuming after the offsets stored
    there (so events the old namespace had and the new one lacks are applied to it, none skipped)."""
    following, consumer = worker.follow, worker.consumer
    active = None if following is None or consumer is None else await following.moved()
    if following is None or consumer is None or active is None:
        return
    await worker.drain()  # the bulk of it outside the lock: rebalances need not wait for it
    async with worker.ownership:  # no rebalance callback runs in between (see ownership.Holder)
        await worker.drain()
        built_with = await worker._retry(lambda: following.definitions_of(active), "read definitions version")
        check_partitions = following.check_partitions
        try:
            record_count = None
            if check_partitions is not None:  # PartitionsMismatch before anything is written
                record_count = await worker._retry(lambda: check_partitions(active), "check partitions")
            record = definitions_rule(
                active, built_with, worker.definitions.version, worker.settings.adopt_definitions
            )
        except DefinitionsMismatch:
            await worker.retire()
            raise
        if record is not None:
            await worker._retry(lambda: following.record_definitions(active, record), "record definitions")
        if record_count is not None:
            await worker._retry(record_count, "record partition count")
        log.warning("active namespace moved from %s to %s: following it", following.current, active)
        await worker.retire()  # from the old namespace's metrics
        following.current = active
        worker.store = following.store_for(active)
        worker.settings = worker.settings.model_copy(update={"namespace": active})
        before = {p: owned.offset for p, owned in worker.owned.items()}
        worker.owned.clear()
        # Every assigned partition, not only those owned: one we were fenced out of (or that waits to be
        # claimed again) in the old namespace is ours to claim in the new one, or it would stall there.
        # Not between a rebalance's callbacks: the assignment still lists the partitions just revoked (the
        # assign callback takes the new ones, in the new namespace: `worker.store` is already it).
        assigned = (
            set() if worker.reassigning else {tp.partition for tp in consumer.assignment()} | set(before)
        )
        # end offsets asked once, before any partition resumes (per partition only where that fails)
        await take_all([TopicPartition(worker.settings.events_topic, p) for p in sorted(assigned)])
        for p in sorted(before):
            owned = worker.owned.get(p)  # None: its claim refused (`Worker._definitions_allow`)
            was, now = before[p], None if owned is None else owned.offset
            if now is not None and (was is None or now > was):
                log.warning(
                    "partition %s: namespace %s is ahead (offset %s, this worker was at %s): the "
                    "transitions of the events in between were published only if its replay ran with "
                    "--emit to the transitions topic",
                    p, active, now, was,
                )  # fmt: skip
