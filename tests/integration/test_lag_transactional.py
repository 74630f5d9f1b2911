"""The lag a worker reports (/metrics `segstream_consumer_lag`, the progress line) on a topic written by a
transactional producer: each transaction leaves a commit marker after its records (an aborted one, records
the worker never receives). Once every committed event is applied the lag is 0, as for any other producer:
SegstreamStalled fires on lag above 0 with nothing applied, so a lag stuck at the marker pages for an idle,
caught-up partition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from streams.bootstrap import ensure_topics, worker_runtime
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.keys import KeySpace
from tests.integration.test_monitoring import exposed, metrics_text
from tests.integration.worker_harness import applied_offsets, make_settings
from tests.services import Services

PARTITIONS = 2


async def produce_in_transactions(settings: Settings, lines: list[bytes], aborted: list[bytes]) -> None:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        transactional_id=f"{settings.events_topic}-tx",
        enable_idempotence=True,
        acks="all",
    )
    await producer.start()
    try:
        for start in range(0, len(lines), 50):
            async with producer.transaction():
                for line in lines[start : start + 50]:
                    await producer.send(settings.events_topic, line, key=_key(line))
        await producer.begin_transaction()
        for line in aborted:
            await producer.send(settings.events_topic, line, key=_key(line))
        await producer.abort_transaction()
    finally:
        await producer.stop()


def _key(line: bytes) -> bytes:
    cid = sample.recover_customer_id(line)
    assert cid is not None
    return cid.encode()


def stored_lags(settings: Settings) -> dict[str, str]:
    keys = KeySpace(settings.key_prefix, "main", settings.events_topic)
    client = sync_client(settings.redis_url, decode_responses=True)
    try:
        row = client.hgetall(keys.metrics())
        return {str(k): str(v) for k, v in row.items() if str(k).startswith("lag:")}
    finally:
        client.close()


def test_lag_is_zero_once_a_transactional_topic_is_applied(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(
        services, topic_name, redis_prefix, topic_partitions=PARTITIONS, namespace="main"
    )
    lines = list(sample.generate(sample.SampleSpec(customers=30, days=60, seed=3, limit=400)))
    committed, aborted = lines[:300], lines[300:]

    async def scenario() -> tuple[str, int | None]:
        async with worker_runtime(settings) as runtime:
            await produce_in_transactions(settings, committed, aborted)
            task = asyncio.create_task(runtime.worker.run())
            deadline = time.monotonic() + 60
            try:
                while sum((o or -1) + 1 for o in applied_offsets(settings).values()) < len(committed):
                    assert not task.done() and time.monotonic() < deadline, "the worker did not apply them"
                    await asyncio.sleep(0.2)
                await asyncio.sleep(2.5)  # idle: two more reports per partition
                worker = runtime.worker
                logged = worker._lag()
                return await metrics_text(settings), logged
            finally:
                runtime.worker.stop()
                await asyncio.wait_for(task, 30)

    text, logged = asyncio.run(scenario())
    lags = exposed(text)["segstream_consumer_lag"]
    assert len(lags) == PARTITIONS and all(line.endswith(" 0") for line in lags), (
        lags,
        stored_lags(settings),
    )
    assert logged == 0  # the progress line's `lag`
