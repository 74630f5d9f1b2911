"""The generator feeds a real topic the way the worker needs it: every line, each customer in one partition,
in event-time order (what per-customer ordering in the worker rests on)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic

from segmentation.events import InvalidEvent, parse_event
from streams.sample.generator import SampleSpec, generate, produce
from tests.services import Services

COUNT = 2_000
SPEC = SampleSpec(customers=25, days=365, seed=7, malformed_share=0.02, limit=COUNT)

Record = tuple[int, int, bytes | None, bytes]


def _create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


async def _consume(bootstrap: str, topic: str, expected: int) -> list[Record]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=f"{topic}-check"
    )
    await consumer.start()
    records: list[Record] = []
    try:
        while len(records) < expected:
            batch = await consumer.getmany(timeout_ms=1000)
            for messages in batch.values():
                for m in messages:
                    assert m.value is not None
                    records.append((m.partition, m.offset, m.key, m.value))
        await asyncio.sleep(0.5)  # anything beyond the expected count would be a duplicate
        extra = await consumer.getmany(timeout_ms=500)
        records += [(m.partition, m.offset, m.key, m.value or b"") for ms in extra.values() for m in ms]
    finally:
        await consumer.stop()
    return records


def test_produce_keeps_each_customer_in_one_partition_in_time_order(
    services: Services, topic_name: Callable[[str], str]
) -> None:
    topic = topic_name("sample")
    _create_topic(services.kafka_bootstrap, topic, partitions=4)

    async def run() -> tuple[int, list[Record]]:
        sent = await produce(SPEC, services.kafka_bootstrap, topic)
        return sent, await _consume(services.kafka_bootstrap, topic, sent)

    sent, records = asyncio.run(asyncio.wait_for(run(), 120))
    expected = list(generate(SPEC))
    assert sent == COUNT == len(expected)
    assert len(records) == COUNT
    assert sorted(value for *_, value in records) == sorted(expected)

    partitions: dict[bytes, set[int]] = defaultdict(set)
    timeline: dict[str, list[tuple[int, int, str, str]]] = defaultdict(list)
    unkeyed = 0
    for partition, offset, key, value in records:
        if key is None:
            unkeyed += 1
            continue
        partitions[key].add(partition)
        try:
            event = parse_event(value)
        except InvalidEvent:
            continue
        assert key == event.customer_id.encode()
        timeline[event.customer_id].append((partition, offset, event.occurred_at.isoformat(), event.event_id))
    assert all(len(found) == 1 for found in partitions.values()), partitions
    assert len({p for found in partitions.values() for p in found}) > 1  # customers are spread out
    assert unkeyed < 0.02 * COUNT  # only malformed lines whose customer id is unreadable
    in_file: dict[str, list[str]] = defaultdict(list)
    for line in expected:
        try:
            event = parse_event(line)
        except InvalidEvent:
            continue
        in_file[event.customer_id].append(event.event_id)
    assert set(timeline) == set(in_file)
    for customer, seen in timeline.items():
        seen.sort()  # one partition: offset order is delivery order
        times = [time for _, _, time, _ in seen]
        assert times == sorted(times), customer
        assert [event_id for *_, event_id in seen] == in_file[customer]  # exactly the generated order
