"""A consumed partition's records are applied in offset order from the stored offset, never from elsewhere.

Why: the consumer's position is not the truth (Redis's applied offset is), and a batch can reach the worker
after its partition was claimed again and sought back (it was fetched before the seek). Applying it would
move the stored offset past events never applied. Kafka may legitimately have no record at an offset
(transaction markers, compaction, retention): a refused batch that comes back starting at the same offset
after the seek proves it, since the consumer drops what it fetched before a seek.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError

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
        # one offset is a transaction's marker; more may be events retention removed before they were
        # applied (a worker down longer than the topic's retention.ms), which an operator must hear about
        log.log(
            logging.INFO if first - expected == 1 else logging.WARNING,
            "partition %s: offsets %s..%s hold no record (%s); going on",
            owned.claim.partition,
            expected,
            first - 1,
            "a transaction marker"
            if first - expected == 1
            else "an aborted transaction or compaction, or events retention removed before they were applied",
        )
        owned.gap = None
        return None
    owned.gap = (expected, first)
    return expected


def in_order(
    consumer: AIOKafkaConsumer | None,
    topic: str,
    owned: Owned,
    done: int | None,
    first: int,
    counted: Callable[[str], None],
) -> bool:
    """`refetch_from` for a consumed batch: one out of order is refused and the consumer seeks back (without a
    consumer, a replay, every batch is taken as it comes)."""
    if consumer is None:
        return True
    expected = refetch_from(owned, done, first)
    if expected is None:
        return True
    partition = owned.claim.partition
    counted("out of order batch")
    log.warning("partition %s: batch starts at %s, not %s; fetching again", partition, first, expected)
    with contextlib.suppress(IllegalStateError):  # revoked meanwhile: the next owner resumes from Redis
        consumer.seek(TopicPartition(topic, partition), expected)
    return False
