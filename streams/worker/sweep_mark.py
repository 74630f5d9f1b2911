"""One sweep of a partition to a clock, its clock made durable before its transitions are published.

Why the mark: a sweep publishes, then commits (a transition is never lost: BRIEF 3.3). A batch's publication
is what any later owner publishes again from the stored state, since it applies the same events. A sweep's
is not: its clock is the wall clock (live) or the watermark at one point of the log, and a later owner that
applies its backlog first, then sweeps, may never make that move. An owner killed or fenced between a
sweep's publication and its commit, with a late event for a swept customer in the backlog (a purchase dated
just before its `at_risk` time), left `active -> at_risk` on the topic for a state no owner ever stored, and
no `at_risk -> active` after it (review of 7 December 2026). So the sweep's clock is first committed to the
partition's meta hash (`sweeping`, fenced like any commit), and the commit of the states it published clears
it (`CLEARED`): a mark that stays means a publication no commit followed. A claim reads it back, and the new
owner sweeps to it before the partition's first batch or sweep (`pay_owed`): the same moves, with the same
ids, before the backlog, as the continuous run made them; it clears the mark once all of that is committed.
Paid where batches and sweeps run, not in the claim (`Worker.take`, a rebalance callback): one sweep of a
partition at a time, and a partition lost during it is left paused and flagged as any lost partition is.
The lazy-adoption walk (`realign`) publishes a page before it commits it too: it marks the same way, and the
new owner of a partition with a walk pending walks it whole at a mark that stayed (`realign.pay`). Not
covered: a Redis that loses the mark with the sweep's commit (a failover to a lagging replica); the owner
then claims again and reads an older mark (or none).
"""

from __future__ import annotations

from streams.store.indexes import CLEARED, IndexDelta
from streams.store.writes import from_us
from streams.worker.batch import BatchResult, advance_all
from streams.worker.ownership import Owned
from streams.worker.pipeline import BatchPipeline
from streams.worker.progress_report import keep_alive


async def pay_owed(pipeline: BatchPipeline, partition: int, owned: Owned) -> bool:
    """Sweep a partition newly claimed to the mark its claim read, before its first batch or sweep; False
    when the partition was lost meanwhile (fenced, rewound, revoked: nothing more may be applied to it)."""
    clock_us, owned.owed_us = owned.owed_us, None
    if clock_us is not None and pipeline.owned.get(partition) is owned and not owned.released:
        await sweep_to(pipeline, partition, owned, clock_us)
    return pipeline.owned.get(partition) is owned and not owned.released


async def sweep_to(pipeline: BatchPipeline, partition: int, owned: Owned, clock_us: int) -> None:
    """Every customer of the partition due at or before `clock_us` moved on, in chunks of
    SEGSTREAM_SWEEP_MAX_CUSTOMERS; each chunk:
    1. reads the due index and loads (or takes from the cache) the due customers' states;
    2. advances them to the clock (`advance_all`);
    3. a Kafka-fed worker with transitions to publish, at a clock not marked yet: commits the mark
       (`sweeping`);
    4. publishes the transitions;
    5. commits the states, and with the last chunk's clears the mark (not while a claim's mark is being
       paid: `paid`); fenced, a partition lost meanwhile stops the sweep at 3 or 5 (`publish_and_commit`).
    """
    settings = pipeline.settings
    limit = settings.sweep_max_customers
    while pipeline.owned.get(partition) is owned and not owned.released:
        due = await pipeline._retry(lambda: pipeline.store.due(partition, clock_us, limit), "read due index")
        if not due:  # after a full last chunk, which could not tell it was the last one
            if owned.marked_us == clock_us and not owned.paying:
                await _clear(pipeline, owned)
            return
        states = await pipeline._states(partition, owned, due)
        if states is None:
            return
        at, publishing = from_us(clock_us), pipeline.producer is not None
        result = advance_all(states, at, pipeline.definitions, settings.history_size, publishing)
        if not await publish_and_commit(pipeline, owned, clock_us, result, len(due) < limit):
            return
        owned.remember(result.states, pipeline.cache_share())
        pipeline.metrics.swept(len(due), len(result.transitions))
        await keep_alive(pipeline.store, pipeline.metrics, pipeline.stated)
        if len(due) < limit:
            return


async def publish_and_commit(
    pipeline: BatchPipeline, owned: Owned, clock_us: int, result: BatchResult, last: bool = True
) -> bool:
    """Steps 3-5 of `sweep_to` for `result` (a sweep's chunk or a walk page, moved to `clock_us`); False when
    the partition was lost (fenced or rewound: nothing more may be published or written). `last`: no chunk
    follows at this clock. A chunk before it leaves the mark for the last one to clear (one mark per sweep,
    not per chunk): a mark at a clock whose every chunk was committed only makes the next owner find nobody
    due there."""
    marking = pipeline.producer is not None and pipeline.consumer is not None and bool(result.transitions)
    # a replay (no consumer) is never taken over half way: nothing needs its sweeps' clocks
    if marking and owned.marked_us != clock_us:
        if not await pipeline._commit(owned, BatchResult(index=IndexDelta(swept_us=clock_us)), None, None):
            return False
        owned.marked_us = clock_us
    # the sweep's mark, at its last chunk (a claim's mark stays until all it owes is committed: `paid`)
    clears = last and owned.marked_us == clock_us and not owned.paying
    if clears:
        result.index.swept_us = CLEARED
    await pipeline._publish(result)
    if not await pipeline._commit(owned, result, None, None):
        return False
    if clears:
        owned.marked_us = None
    return True


async def paid(pipeline: BatchPipeline, partition: int, owned: Owned) -> bool:
    """After a claim's mark is paid (its sweep, and a pending walk: `Worker._pay_owed`): the mark cleared, as
    the commit of the moves it guarded would have; False when the partition was lost meanwhile."""
    if pipeline.owned.get(partition) is not owned or owned.released:
        return False
    return owned.marked_us is None or await _clear(pipeline, owned)


async def _clear(pipeline: BatchPipeline, owned: Owned) -> bool:
    """The mark cleared by a commit of its own; False when the partition was lost."""
    if not await pipeline._commit(owned, BatchResult(index=IndexDelta(swept_us=CLEARED)), None, None):
        return False
    owned.marked_us = None
    return True
