"""The real broker works with both Python clients the project uses, consumer groups included."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from tests.services import Services


def _create_topic(bootstrap: str, name: str, partitions: int = 2) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()


def test_aiokafka_round_trip(services: Services, topic_name: Callable[[str], str]) -> None:
    topic = topic_name("aio")
    _create_topic(services.kafka_bootstrap, topic)

    async def run() -> list[tuple[bytes | None, bytes | None]]:
        producer = AIOKafkaProducer(
            bootstrap_servers=services.kafka_bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            for i in range(10):
                await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i % 3}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=services.kafka_bootstrap,
            auto_offset_reset="earliest",
            group_id=f"{topic}-g",
        )
        await consumer.start()
        got: list[tuple[bytes | None, bytes | None]] = []
        try:
            while len(got) < 10:
                batch = await consumer.getmany(timeout_ms=1000)
                got += [(m.key, m.value) for msgs in batch.values() for m in msgs]
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(asyncio.wait_for(run(), 60))
    assert sorted(v for _, v in got if v) == sorted(f"v{i}".encode() for i in range(10))
    # Same key, same partition, in order: what per-customer ordering rests on.
    by_key: dict[bytes, list[bytes]] = {}
    for k, v in got:
        assert k is not None and v is not None
        by_key.setdefault(k, []).append(v)
    assert by_key[b"k0"] == [b"v0", b"v3", b"v6", b"v9"]


def test_kafka_python_group_commits_offsets(services: Services, topic_name: Callable[[str], str]) -> None:
    topic = topic_name("kp")
    _create_topic(services.kafka_bootstrap, topic, partitions=1)
    producer = KafkaProducer(bootstrap_servers=services.kafka_bootstrap, acks="all")
    for i in range(5):
        producer.send(topic, f"m{i}".encode())
    producer.flush()
    producer.close()

    group = f"{topic}-group"
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=services.kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15000,
    )
    values = []
    for msg in consumer:
        values.append(msg.value)
        if len(values) == 5:
            break
    consumer.commit()
    committed = consumer.committed(TopicPartition(topic, 0))
    consumer.close()
    assert values == [f"m{i}".encode() for i in range(5)]
    assert committed == 5
