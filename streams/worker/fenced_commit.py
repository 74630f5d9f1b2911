"""Step 5 of a batch: one fenced commit, and what a timeout, a newer owner or a rewound Redis means for it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from streams.store.port import Fenced, Rewound, StaleOffset, StateStore, WriteBatch
from streams.worker.ownership import Owned
from streams.worker.retry import retry

log = logging.getLogger("segstream.worker")


async def commit_batch(
    store: StateStore,
    owned: Owned,
    batch: WriteBatch,
    offset: int | None,
    watermark_us: int | None,
    counted: Callable[[str], None],
    max_backoff_s: float,
) -> Literal["committed", "fenced", "rewound"]:
    """Commit, retrying transient failures. Not committed (nothing was written): "fenced" when a newer owner
    claimed the partition, "rewound" when Redis holds an older state than our claim (it lost writes)."""
    partition = owned.claim.partition
    try:
        await retry(
            lambda: store.commit(owned.claim, offset, watermark_us, batch),
            "commit state",
            counted,
            max_backoff_s,
        )
    except Fenced as exc:
        # Someone claimed the partition after us: a rebalance we have not seen yet, or a stale worker
        # (this one) next to `definitions apply`. Stop touching it; a new assignment takes it back.
        log.error("fenced out of partition %s, pausing it until it is assigned again: %s", partition, exc)
        return "fenced"
    except Rewound as exc:
        # Nobody else owns it: Redis went back in time (restored from an older snapshot, or a failover to a
        # replica that lagged). Our cache and in-flight batches are ahead of it; the caller claims again.
        log.error("partition %s: Redis lost writes (%s); claiming it again", partition, exc)
        return "rewound"
    except StaleOffset:
        # Only our own claim can commit, so a stale offset means an earlier attempt of this very commit
        # landed although we saw a timeout: the script is atomic, so its content is ours. Confirm it.
        stored, _ = await retry(lambda: store.read_meta(partition), "read offset", counted, max_backoff_s)
        if stored != offset:
            raise RuntimeError(
                f"partition {partition}: stored offset {stored} is neither ours ({offset}) "
                "nor before it; refusing to continue on state we cannot account for"
            ) from None
        log.warning("commit of offset %s had landed before its timeout; continuing", offset)
    return "committed"
