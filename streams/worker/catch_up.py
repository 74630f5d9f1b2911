"""When a live worker has caught up with a partition it took: until then it sweeps the partition by event
time, as a replay does, since moving customers on by the wall clock first would turn the backlog's events
into late events and publish time-driven moves a continuous run never makes (`Owned.caught_up`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from segmentation.instants import to_us
from streams.worker.ownership import Owned

log = logging.getLogger("segstream.worker")
ASK_AGAIN_S = 5.0  # an end offset Kafka did not give is asked again at most this often


async def end_offsets(consumer: Any, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
    """The partitions' end offsets, or none of them (logged) when Kafka does not answer within 10 s."""
    try:  # bounded: this may run in a rebalance callback, which must not stall the group
        return dict(await asyncio.wait_for(consumer.end_offsets(list(tps)), 10.0))
    except (TimeoutError, KafkaError) as exc:
        partitions = ",".join(str(tp.partition) for tp in tps)
        log.warning(
            "partition %s: end offset unknown (%s); swept by event time until it is known", partitions, exc
        )
        return {}


def live_clock(watermark_us: int | None, wall: datetime, caught: bool) -> int | None:
    """A live sweep's clock: the wall clock once the partition's backlog is applied, its watermark before
    (as a replay would), and never past the wall clock. The watermark can be ahead of it (an event dated up
    to SEGSTREAM_MAX_FUTURE_SKEW_S later: a fast device clock, local time sent as UTC); sweeping to it would
    move every other customer of the partition on before the move's time, and their events dated before it,
    still to come, would arrive late (a customer buying before its due time published at_risk, then back)."""
    wall_us = to_us(wall)
    if caught:
        return wall_us
    return None if watermark_us is None else min(watermark_us, wall_us)


async def caught_up(consumer: Any, tp: TopicPartition, owned: Owned, batch_max_events: int) -> bool:
    """`Owned.caught_up`, or the consumer fetched past the backlog: the last offsets of a partition can be
    transaction markers or compacted away, never delivered, so the applied offset may never reach it."""
    if owned.caught_up():
        return True
    if tp not in consumer.assignment():
        return False
    if owned.end_unknown and not await _learn_end(consumer, tp, owned):
        return False
    if owned.catch_up_to is None:
        return owned.caught_up()
    try:  # returns at once while the position is valid (always, after take's seek)
        position = await asyncio.wait_for(consumer.position(tp), 1.0)
    except (TimeoutError, IllegalStateError):
        return False
    if owned.inflight is not None and not owned.inflight.done():
        return False  # fetched and applied, not yet settled: a sweep no longer waits for it (check again)
    if position > owned.catch_up_to:  # every record up to there was returned, submitted and settled
        high = consumer.highwater(tp)
        if high is not None and high - position > batch_max_events:
            owned.catch_up_to = high - 1  # more arrived meanwhile than a batch: catch up on that too
            return False
        owned.catch_up_to = None
    return owned.catch_up_to is None


async def _learn_end(consumer: Any, tp: TopicPartition, owned: Owned) -> bool:
    """The end of a partition taken without it: the high watermark of its fetches, else asked again (at most
    every ASK_AGAIN_S). Until then the partition is not caught up (found in review, 6 December 2026: it
    counted as caught up, and a sweep aged the backlog's customers by the wall clock)."""
    high = consumer.highwater(tp)
    if high is None and time.monotonic() >= owned.end_asked + ASK_AGAIN_S:
        owned.end_asked = time.monotonic()
        high = (await end_offsets(consumer, [tp])).get(tp)
    if high is None:
        return False
    owned.end_unknown = False
    owned.catch_up_to = high - 1 if high else None
    return True
