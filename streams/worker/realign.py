"""After a lazy adoption (SEGSTREAM_ADOPT_DEFINITIONS=true): every customer of a partition moved to the
worker's definitions once, by a walk over the partition's stored customers, page by page within the sweeps.

Why: a customer with no event is moved only by a sweep, and the due index names it at the time its earlier
definitions set. Definitions that bring a change earlier would move it late, and never where the earlier
ones set no time (`streams/store/definitions_record.py`). Each page is aligned at the customers' own clocks
and advanced to the sweep's clock (`advance_all`), as `definitions apply` and then a sweep would move them;
a customer already at the worker's version is skipped, so a walk restarted by a new claim writes nothing
twice. When the walk ends the partition is recorded as done.

A page publishes, then commits, as a sweep does, and its clock is no more in the log than a sweep's: a page
published by an owner killed before its commit, with a late event of a walked customer in the backlog, left
moves on the topic that no owner stored (`sweep_mark`). So a page marks its clock first and its commit
clears the mark; the next owner of a partition with a walk pending and a mark that stayed walks the rest
whole at the mark before its backlog (`pay`). Which walk is pending is read before the claim (`pending`) and
set on the partition with no await after it (`begin`): a poll loop paying the mark in between would skip
the walk."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from functools import partial

from streams.store.definitions_record import DefinitionsRecord
from streams.store.writes import from_us
from streams.worker.batch import advance_all
from streams.worker.ownership import Owned
from streams.worker.pipeline import BatchPipeline
from streams.worker.progress_report import keep_alive
from streams.worker.retry import TORN, TRANSIENT, transient
from streams.worker.sweep_mark import publish_and_commit

log = logging.getLogger("segstream.worker")


async def pending(pipeline: BatchPipeline, record: DefinitionsRecord, partition: int) -> str | None:
    """Before a claim: the adoption whose walk the partition still needs, if any."""
    namespace, version = pipeline.settings.namespace, pipeline.definitions.version
    if namespace is None:
        return None
    return await pipeline._retry(
        lambda: record.realigning(namespace, partition, version), "read definitions realignment"
    )


def begin(pipeline: BatchPipeline, owned: Owned, walk: str | None) -> None:
    """At the claim, with no await since `own`: the walk set before the poll loop may pay the claim's mark."""
    if walk is not None:
        partition = owned.claim.partition
        log.info("partition %s: moving its customers to definitions %s (lazy adoption)", partition, walk)
        owned.realign, owned.realign_for = pipeline.store.customer_ids(partition), walk


async def step(
    pipeline: BatchPipeline, record: DefinitionsRecord, owned: Owned, clock_us: int, force: bool
) -> None:
    """Pages of the walk: one per sweep (the poll loop is not held up), all of them when `force`."""
    partition, version = owned.claim.partition, pipeline.definitions.version
    namespace, limit = pipeline.settings.namespace, pipeline.settings.sweep_max_customers
    while owned.realign is not None and pipeline.owned.get(partition) is owned and not owned.released:
        ids = await _page(pipeline, owned, owned.realign, limit)
        if ids is None:  # Redis unreachable: walked again from the start at the next sweep
            return
        if not ids:
            owned.realign = None
            if namespace is not None:
                walk = owned.realign_for
                await pipeline._retry(
                    partial(record.realigned, namespace, partition, walk), "record realignment"
                )
            log.info("partition %s: every customer at definitions %s", partition, version)
            return
        states = await pipeline._states(partition, owned, ids)
        if states is None:  # fenced out or rewound: the partition is let go
            return
        stale = {
            cid: known
            for cid, known in states.items()
            if known[0].clock is not None and known[0].definitions_version != version
        }
        if stale:
            result = advance_all(
                stale, from_us(clock_us), pipeline.definitions, pipeline.settings.history_size,
                pipeline.producer is not None,
            )  # fmt: skip
            if not await publish_and_commit(pipeline, owned, clock_us, result):
                return
            owned.remember(result.states, pipeline.cache_share())
            pipeline.metrics.swept(len(stale), len(result.transitions))
        await keep_alive(pipeline.store, pipeline.metrics, pipeline.stated)
        if not force:
            return


async def pay(pipeline: BatchPipeline, record: DefinitionsRecord, owned: Owned, clock_us: int) -> None:
    """The whole walk at an owed mark's clock, before the partition's first batch: the killed owner's page
    (which one is not known) made again with the same moves and ids, the pages after it moved at that clock
    too (the lazy walk only spreads them over the sweeps). A Redis outage restarts the walk, after a pause."""
    pause, partition = 0.05, owned.claim.partition
    while owned.realign is not None and pipeline.owned.get(partition) is owned and not owned.released:
        await step(pipeline, record, owned, clock_us, True)
        if owned.realign is not None:
            await asyncio.sleep(pause)
            pause = min(pause * 2, pipeline.settings.retry_max_backoff_s)


async def _page(
    pipeline: BatchPipeline, owned: Owned, walk: AsyncIterator[str], limit: int
) -> list[str] | None:
    """Up to `limit` customer ids (deduplicated), or None when the walk failed and was restarted."""
    ids: dict[str, None] = {}
    try:
        async for customer_id in walk:
            ids[customer_id] = None
            if len(ids) >= limit:
                break
    except (*TRANSIENT, *TORN) as exc:
        if not transient(exc):
            raise
        log.warning(
            "partition %s: realignment walk interrupted (%s); starting it again", owned.claim.partition, exc
        )
        owned.realign = pipeline.store.customer_ids(owned.claim.partition)
        return None
    return list(ids)
