"""Progress leaves the worker twice: the Kafka offset (for lag monitoring) and the metrics hash."""

from __future__ import annotations

import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.store.counters import Metrics
from streams.store.metrics_hash import worker_fields
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
    lag: int | None = None
    if (
        consumer is not None
        and owned.offset is not None
        and TopicPartition(topic, partition) in consumer.assignment()
    ):
        high = consumer.highwater(TopicPartition(topic, partition))
        lag = None if high is None else max(0, high - owned.offset - 1)
    try:
        await store.publish_metrics(worker_fields(metrics, partition, lag))
    except Exception as exc:  # best effort: metrics must never stop or slow the stream
        log.warning("could not publish metrics: %s", exc)
