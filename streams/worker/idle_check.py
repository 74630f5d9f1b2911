"""Idle partitions are checked too: Redis may lose writes (a restart with an older AOF, a failover to a
lagging replica) while a partition receives nothing and has nobody due.

The worker learns that Redis went back from the read before a batch or a sweep (`standing.starting_states`)
and from a commit. A quiet partition has neither: Redis kept lacking the events of its lost commits (their
purchases, orders and segments) for as long as no new event came, while the worker reported lag 0. So each
idle partition's report (at most every REPORT_INTERVAL_S) is preceded by the same check, one HMGET of the
partition's meta hash: rewound, it is claimed again and its lost events applied again; fenced, it is let go
(tests/integration/test_rewind_idle_partition.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from streams.store.port import Fenced, Rewound, StateStore
from streams.worker.ownership import Owned
from streams.worker.pipeline import BatchPipeline
from streams.worker.retry import TORN, TRANSIENT, transient

log = logging.getLogger("segstream.worker")


async def standing(store: StateStore, owned: Owned) -> Literal["ours", "fenced", "rewound"]:
    """Whether the partition is still as our last commit left it (one try: an outage is checked again at the
    next report, and any batch or sweep checks it before applying anything)."""
    partition = owned.claim.partition
    try:
        await store.load(partition, [], owned.claim)
    except Fenced as exc:
        log.error("fenced out of idle partition %s, pausing it: %s", partition, exc)
        return "fenced"
    except Rewound as exc:
        log.error("idle partition %s: Redis lost writes (%s); claiming it again", partition, exc)
        return "rewound"
    except (*TRANSIENT, *TORN) as exc:
        if not transient(exc):
            raise
    return "ours"


async def report_idle(pipeline: BatchPipeline, now: float) -> None:
    """Report every partition without a batch in flight whose report is due, once checked still ours."""
    due = [
        (partition, owned)
        for partition, owned in list(pipeline.owned.items())
        if now >= owned.next_report and (owned.inflight is None or owned.inflight.done())
    ]
    if not due:
        return
    # concurrently: the checks of several partitions share one Redis round trip (`RoundTrips`)
    outcomes = await asyncio.gather(*(standing(pipeline.store, owned) for _, owned in due))
    for (partition, owned), outcome in zip(due, outcomes, strict=True):
        if pipeline.owned.get(partition) is not owned:  # let go or claimed again meanwhile
            continue
        if outcome != "ours":
            pipeline._lose(owned, outcome)
            continue
        await pipeline.report(partition, owned)
