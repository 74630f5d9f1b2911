"""A dead letter always fits its topic: a DLQ topic whose `max.message.bytes` is below
SEGSTREAM_DLQ_MAX_VALUE_BYTES refused the first bad record larger than its limit (MessageSizeTooLargeError,
not retriable), and the worker stopped on it at every restart (review of 7 December 2026). The value is now
cut to what the topic takes, as the worker learns it at start (`message_limit.learn`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from segmentation import Definitions
from streams.settings import Settings
from streams.store.port import InMemoryStateStore
from streams.topics import message_limit
from streams.worker.batch import Record
from streams.worker.loop import Worker
from tests.unit.seg_helpers import home_ids

(C,) = home_ids("c", 0, 1)
TOPIC_LIMIT = 100_000  # the DLQ topic's max.message.bytes


class Broker(AIOKafkaProducer):  # type: ignore[misc]
    """The real batch builder; a broker that refuses a batch over its topic's max.message.bytes."""

    def __init__(self, dlq_topic: str) -> None:
        super().__init__(max_batch_size=1 << 20)
        self.dlq_topic = dlq_topic
        self.stored: list[tuple[str, int]] = []  # (topic, batch bytes)

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[object]:
        size = len(batch._builder.build())
        answer: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if topic == self.dlq_topic and size > TOPIC_LIMIT:
            answer.set_exception(MessageSizeTooLargeError())
        else:
            self.stored.append((topic, size))
            answer.set_result(None)
        return answer


def test_a_big_bad_record_is_dead_lettered_on_a_dlq_topic_of_a_lower_limit() -> None:
    settings = Settings()  # DLQ_MAX_VALUE_BYTES 900,000
    bad = [Record(settings.events_topic, 0, n, C.encode(), b"x" * 300_000) for n in range(2)]  # not JSON

    async def attempt() -> tuple[int | None, list[tuple[str, int]]]:
        store, producer = InMemoryStateStore(), Broker(settings.dlq_topic)
        worker = Worker(settings, Definitions.default(), store, producer, None)
        await worker.own(0)
        await worker.process(0, bad)
        return (await store.read_meta(0))[0], producer.stored

    message_limit._bounds[settings.dlq_topic] = TOPIC_LIMIT - message_limit.BATCH_HEADER  # as `learn` sets it
    try:
        offset, stored = asyncio.run(attempt())
    finally:
        message_limit._bounds.pop(settings.dlq_topic, None)
    assert offset == 1, "both applied as dead letters, the offset committed past them"
    sizes = [size for topic, size in stored if topic == settings.dlq_topic]
    assert len(sizes) == 2 and all(90_000 < size <= TOPIC_LIMIT for size in sizes), sizes


@pytest.mark.parametrize(("limit", "refused"), [(4_000, True), (8_191, True), (8_192, False)])
def test_a_dlq_topic_too_small_for_a_dead_letter_is_refused_at_start(limit: int, refused: bool) -> None:
    """Below ~8 KB no cut of the value makes a dead letter fit (its key and headers take up to ~4 KB): exit 2
    at start, naming the topic and the limit, rather than a stop at the first bad record."""
    topic = Settings().dlq_topic
    message_limit._bounds[topic] = limit - message_limit.BATCH_HEADER
    try:
        if refused:
            with pytest.raises(message_limit.TopicLimitTooLow, match=f"max.message.bytes={limit}") as caught:
                message_limit.check_dead_letters(topic)
            assert caught.value.exit_code == 2 and topic in str(caught.value)
        else:
            message_limit.check_dead_letters(topic)
    finally:
        message_limit._bounds.pop(topic, None)
