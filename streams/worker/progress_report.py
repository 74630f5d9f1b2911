"""Progress leaves the worker twice: the Kafka offset (for lag monitoring) and the metrics hash."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from streams.store.counters import Metrics
from streams.store.metrics_hash import WORKER_ID, retired_fields, rotate, worker_fields
from streams.store.port import StateStore
from streams.worker.ownership import Owned

log = logging.getLogger("segstream.worker")
REPORT_INTERVAL_S = 1.0
"""Step 6's Kafka offset commit and step 7's metrics go out at most this often per partition (and when the
partition is revoked or the worker drains): both are informational (Redis holds the offset we resume from),
and per batch they cost the broker ~0.6 CPU-us per event, a third of its share, for lag figures nobody
reads more often than every few seconds."""


async def report(
    consumer: AIOKafkaConsumer | None,
    store: StateStore,
    metrics: Metrics,
    topic: str,
    partition: int,
    owned: Owned,
    mode: str = "",
    applies: str = "",
) -> None:
    """Steps 6 and 7 of `Worker.submit`: the Kafka offset (lag monitoring only: Redis, not Kafka, is where we
    resume from) and the metrics; at most every REPORT_INTERVAL_S, and when the partition is let go."""
    owned.next_report = time.monotonic() + REPORT_INTERVAL_S
    if consumer is not None and owned.offset is not None and owned.offset != owned.reported:
        tp = TopicPartition(topic, partition)
        try:
            await consumer.commit({tp: owned.offset + 1})
            owned.reported = owned.offset
        except KafkaError as exc:  # informational only; the next report commits again
            log.warning("could not commit offset to Kafka for %s: %s", tp, exc)
    lag = None if consumer is None else await partition_lag(consumer, TopicPartition(topic, partition), owned)
    owned.lag = lag
    try:
        await store.publish_metrics(worker_fields(metrics, partition, lag, mode, applies))
    except Exception as exc:  # best effort: metrics must never stop or slow the stream
        log.warning("could not publish metrics: %s", exc)


async def keep_alive(store: StateStore, metrics: Metrics, stated: Callable[[], tuple[str, str]]) -> None:
    """Inside a long sweep or adoption walk, which hold the poll loop and so its reports: the worker's
    `updated_at` refreshed at most every REPORT_INTERVAL_S, so that `drop`, `replay --force` and `definitions
    apply` still see it running past FRESH_S (`streams/store/namespace_writers.py`); with its mode and
    settings, which a first sweep before any report would not state otherwise (`mode_guard`); best effort."""
    now = time.monotonic()
    if now < metrics.alive_next:
        return
    metrics.alive_next = now + REPORT_INTERVAL_S
    prefix, (mode, applies) = f"w:{metrics.reporter or WORKER_ID}:", stated()  # derived when written only
    fields = {prefix + "updated_at": f"{time.time():.3f}", prefix + "mode": mode, prefix + "applies": applies}
    try:
        await store.publish_metrics(fields)
    except Exception as exc:  # as every report: metrics never stop the stream
        log.warning("could not publish metrics: %s", exc)


async def retire(store: StateStore, metrics: Metrics) -> None:
    """The worker stops writing this namespace: its counters folded into the namespace's retired totals, its
    fields gone (`definitions apply` need not wait for its heartbeat to age out; the hash does not grow per
    worker start); best effort, like every metrics publication (`metrics_hash.retired_fields`)."""
    final, summed, others = retired_fields(metrics)
    try:
        await store.publish_metrics(final)
    except Exception as exc:  # nothing folded: the id goes on (its next report counts all it applied)
        log.warning("could not publish metrics: %s", exc)
        return
    rotate(metrics)  # before the fold's await: a report from now on is the new id's
    try:
        await store.retire_metrics(summed, others)
    except Exception as exc:
        log.warning("could not publish metrics: %s", exc)


async def partition_lag(consumer: AIOKafkaConsumer, tp: TopicPartition, owned: Owned) -> int | None:
    """Events behind the partition's high watermark (None: not known yet). Counted from the consumer's
    position when nothing is in flight, not from the applied offset alone: the offsets in between hold no
    record to apply (a transaction's commit marker, an aborted transaction's records), and counting them
    kept an idle, caught-up partition of a transactional producer's topic at a lag above 0 for ever, which
    SegstreamStalled pages on."""
    if tp not in consumer.assignment():
        return None
    high = consumer.highwater(tp)
    if high is None:
        return None
    after = 0 if owned.offset is None else owned.offset + 1
    settled = owned.inflight is None or owned.inflight.done()
    if settled and owned.prepared in (None, owned.offset):  # every record fetched so far is applied
        with contextlib.suppress(TimeoutError, IllegalStateError):  # valid after take's seek: at once
            position: int = await asyncio.wait_for(consumer.position(tp), 1.0)
            after = max(after, position)
    return max(0, int(high) - after)
