"""A consumed partition's records are applied in offset order from the stored offset, never from elsewhere.

Why: the consumer's position is not the truth (Redis's applied offset is), and a batch can reach the worker
after its partition was claimed again and sought back (it was fetched before the seek). Applying it would
move the stored offset past events never applied. Kafka may legitimately have no record at an offset
(transaction markers, compaction, retention): a refused batch that comes back starting at the same offset
after the seek proves it, since the consumer drops what it fetched before a seek.
"""

from __future__ import annotations

import logging

from streams.worker.ownership import Owned

log = logging.getLogger("segstream.worker")


def refetch_from(owned: Owned, done: int | None, first: int) -> int | None:
    """None when a batch starting at `first` may be applied after `done` (the last offset applied or in
    flight; None: nothing ever, so offset 0); else the offset to seek back to and fetch again from."""
    expected = 0 if done is None else done + 1
    if first == expected:
        owned.gap = None
        return None
    if owned.gap == (expected, first):
        log.info(
            "partition %s: offsets %s..%s hold no record; going on",
            owned.claim.partition,
            expected,
            first - 1,
        )
        owned.gap = None
        return None
    owned.gap = (expected, first)
    return expected
