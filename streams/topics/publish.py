"""Publishing many records at once: one BatchBuilder per partition instead of one send() per record.

aiokafka's per-record `send()` costs ~20 µs (future, partitioner, accumulator); a batch append costs a few.
Records are partitioned exactly as the default partitioner would (murmur2 of the key), so a customer's
transitions stay in one partition, in order. Each batch is closed before it is handed over: a closed batch
is sent at once instead of lingering `linger_ms` for records that will never come (we wait for the acks
of every publication, so the linger was pure latency: ~5 ms per batch of transitions).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer

from segmentation.transition import Transition
from streams.store.partitioning import partition_of_key
from streams.topics.deadletter import DeadLetter
from streams.topics.envelope import transition_event
from streams.topics.message_limit import batch_bound

Item = tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes]]]  # key, value, headers


TRANSITIONS_BATCH_BYTES = 64 * 1024
"""The most record bytes a batch of transitions holds when the topic's own `max.message.bytes` is unknown
(`message_limit`, read when the worker, or `definitions apply`, ensures its topics). A batch of events or a
sweep makes thousands of transitions for one partition: in the producer's 1 MiB batches, a transitions topic
whose limit is below that refused them (`MessageSizeTooLarge`, not retriable) and the worker stopped before
its commit at every restart. Where the limit is known, batches go up to it: 64 KiB batches on a default
topic cost the broker 1.86x CPU per event on an import (docs/benchmarks.md)."""


def transitions_bound(topic: str) -> int:
    """The record bytes one batch of transitions to `topic` may hold (`TRANSITIONS_BATCH_BYTES`)."""
    return batch_bound(topic) or TRANSITIONS_BATCH_BYTES


RECORD_OVERHEAD, HEADER_OVERHEAD = 40, 10
"""Bytes a record (a header) takes in a batch beyond its key, value (name, value) at most: varint lengths,
deltas, attributes."""


DLQ_ROOM = 4_096
"""Bytes a dead letter takes beyond its value at most (key cut to 1,024, the error headers to ~3 KB: README,
`DLQ_MAX_VALUE_BYTES`): a value cut to the DLQ topic's batch bound less this fits it, whatever the setting."""


def _size(item: Item) -> int:
    key, value, headers = item
    named = sum(len(name.encode()) + len(data) for name, data in headers)
    return len(key or b"") + len(value or b"") + named + RECORD_OVERHEAD + HEADER_OVERHEAD * len(headers)


async def publish(
    producer: AIOKafkaProducer, topic: str, items: Iterable[Item], max_batch_bytes: int | None = None
) -> int:
    """Send every item and wait until the broker acknowledged all of them; returns the count.

    `max_batch_bytes`: a record batch holds more than one record only while it stays within this size (the
    producer's own bound is its `max_batch_size`, 1 MiB): a topic whose `max.message.bytes` is below that
    refuses a whole batch of records that each fit it, and that refusal is not retriable."""
    acks, count = await submit(producer, topic, items, max_batch_bytes)
    if acks:
        await asyncio.gather(*acks)
    return count


async def submit(
    producer: AIOKafkaProducer, topic: str, items: Iterable[Item], max_batch_bytes: int | None = None
) -> tuple[list[asyncio.Future[object]], int]:
    """`publish` without the wait: the futures of the batches handed to the producer, and the record count
    (for a caller that keeps producing while earlier batches are acknowledged, such as a load generator)."""
    partitions = sorted(await producer.partitions_for(topic))
    spread = itertools.cycle(partitions)
    grouped: dict[int, list[Item]] = {}
    for item in items:
        key = item[0]
        p = partitions[partition_of_key(key, len(partitions))] if key is not None else next(spread)
        grouped.setdefault(p, []).append(item)
    futures: list[asyncio.Future[object]] = []
    for partition, batch_items in grouped.items():
        batch, size = producer.create_batch(), 0
        for key, value, headers in batch_items:
            size += _size((key, value, headers))
            full = max_batch_bytes is not None and size > max_batch_bytes and batch.record_count() > 0
            if full or batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                batch.close()
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch, size = producer.create_batch(), _size((key, value, headers))
                if batch.append(key=key, value=value, timestamp=None, headers=list(headers)) is None:
                    raise ValueError(f"a record of {len(value or b'')} bytes does not fit in a batch")
        batch.close()
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures, sum(len(v) for v in grouped.values())


async def publish_outcome(
    producer: AIOKafkaProducer,
    transitions_topic: str,
    dlq_topic: str,
    transitions: Sequence[Transition],
    dead_letters: Sequence[DeadLetter],
    dlq_max_value_bytes: int = 900_000,
) -> None:
    """Step 4 of a batch: transitions (keyed by customer: in order per customer), then dead letters."""
    if transitions:  # in batches its max.message.bytes takes (streams/topics/message_limit.py)
        await publish(
            producer,
            transitions_topic,
            ((t.customer_id.encode(), transition_event(t), ()) for t in transitions),
            max_batch_bytes=transitions_bound(transitions_topic),
        )
    if dead_letters:  # cut to fit its topic whatever the setting: refused, it would stop the worker for good
        bound = batch_bound(dlq_topic)
        cut = dlq_max_value_bytes if bound is None else max(1, min(dlq_max_value_bytes, bound - DLQ_ROOM))
        records = (d.record(cut) for d in dead_letters)
        await publish(producer, dlq_topic, records, max_batch_bytes=cut if bound is None else bound)
