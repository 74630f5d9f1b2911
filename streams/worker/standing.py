"""Whether this worker may still write a partition: checked before a batch is applied, not only at commit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from streams.store.kpi_ops import check_stored
from streams.store.port import Fenced, Rewound, StateStore
from streams.store.stored_state import loaded
from streams.store.writes import Known
from streams.worker.ownership import Owned
from streams.worker.retry import retry

log = logging.getLogger("segstream.worker")


async def starting_states(
    store: StateStore,
    owned: Owned,
    customer_ids: list[str],
    counted: Callable[[str], None],
    max_backoff_s: float,
) -> dict[str, Known] | Literal["fenced", "rewound"]:
    """The customers' states, or why we may no longer write the partition.

    The states this worker holds are the stored ones only while nobody else has written the partition since
    our last commit. A worker that was frozen (SIGSTOP, a long pause, a split from the group coordinator) can
    still believe it owns a partition that a newer owner moved on: applied to its stale cache, a batch would
    publish transitions no replay has before its commit is refused (the commit fence alone comes too late:
    publishing precedes the commit so that no transition is lost). So the missing states are loaded in the
    same round trip as the partition's fence and commit count (`StateStore.load` with our claim), and nothing
    is applied unless both are still ours. Once checked, what we publish is what any owner would publish from
    that stored state (the same transition ids), whatever happens afterwards.
    """
    states = owned.held(customer_ids)
    missing = [cid for cid in customer_ids if cid not in states]
    partition = owned.claim.partition
    try:
        rows = await retry(
            lambda: store.load(partition, missing, owned.claim), "load states", counted, max_backoff_s
        )
    except Fenced as exc:
        log.error("fenced out of partition %s before applying a batch, pausing it: %s", partition, exc)
        return "fenced"
    except Rewound as exc:
        log.error("partition %s: Redis lost writes (%s); claiming it again", partition, exc)
        return "rewound"
    keys = getattr(
        store, "keys", None
    )  # the Redis store's: names the namespace if a hash is of another format
    namespace = getattr(keys, "namespace", "(in memory)")
    for cid, row in rows.items():
        # an erased customer's tombstone is its blank state, in no segment (streams/store/writes.py)
        states[cid] = loaded(row, namespace)
        check_stored(row, namespace)  # a KPI marker this code cannot continue: refused before any write
    return states
