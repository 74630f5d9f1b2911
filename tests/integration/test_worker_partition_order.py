"""The partitions of one poll are applied concurrently: partition 1's commit lands while partition 0's is
still held (forced), then the worker dies. Neither Redis's applied offset nor Kafka's committed offset of
partition 0 may be past an event not applied; a restart applies the rest and ends as a run without the
crash."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import TopicPartition

from streams.bootstrap import ensure_topics, worker_runtime
from streams.sample import generator as sample
from streams.worker import loop
from streams.worker.concurrent_partitions import submit_at_once
from tests.integration.test_worker_kill import caught_up, end_offsets
from tests.integration.worker_harness import (
    applied_offsets,
    make_settings,
    run_worker_until,
    stored_customers,
)
from tests.services import Services


def test_a_partition_finishing_before_another_never_moves_the_others_offset(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = sample.SampleSpec(customers=60, days=120, seed=9, malformed_share=0.0)
    clean = make_settings(services, topic_name, redis_prefix + "clean:", topic_partitions=2)
    crashy = clean.model_copy(
        update={
            "key_prefix": redis_prefix + "crashy",
            "group_id": topic_name("crashy-group"),
            "batch_max_events": 100,
        }
    )

    async def feed() -> None:
        await ensure_topics(clean)
        await sample.produce(spec, clean.kafka_bootstrap, clean.events_topic)

    asyncio.run(feed())
    ends = end_offsets(clean)
    seen: dict[str, Any] = {}

    async def crash_with_partition_0_held() -> None:
        async with worker_runtime(crashy) as runtime:
            store: Any = runtime.worker.store
            original, held, p1_after = store._commit, asyncio.Event(), asyncio.Event()
            both = asyncio.Event()  # the third poll with records of both partitions: their commits overlap
            mixed: list[int] = []
            consumer = runtime.worker.consumer
            assert consumer is not None
            fetch = consumer.getmany

            async def fetch_each(*_: Any, timeout_ms: int = 0, max_records: int | None = None) -> Any:
                """Half a batch from each partition: a poll of both, whatever records aiokafka has buffered
                (unrestricted, a partition's buffer ending on a batch boundary gave polls of one only)."""
                assigned = sorted(consumer.assignment())
                if not assigned:
                    return await fetch(timeout_ms=timeout_ms, max_records=max_records)
                got: dict[Any, Any] = {}
                for tp in assigned:
                    got.update(await fetch(tp, timeout_ms=timeout_ms, max_records=(max_records or 100) // 2))
                return got

            async def polled(submit: Any, batches: Any) -> None:
                if len({p for p, records, owner in batches if records and owner is not None}) == 2:
                    mixed.append(1)
                    if len(mixed) == 3:  # partition 0 has landed commits before the one held
                        both.set()
                await submit_at_once(submit, batches)

            async def hooked(keys: Any, args: Any) -> Any:
                partition = 0 if "events:0}" in keys[0] else 1
                if partition == 0 and both.is_set() and not held.is_set():
                    seen["p0 at hold"] = applied_offsets(crashy)[0]  # what p0's landed commits applied
                    held.set()
                    await asyncio.Event().wait()  # never answered: the worker dies with it in flight
                if partition == 1 and both.is_set():  # its batch of that poll commits while 0's is held
                    await asyncio.wait_for(held.wait(), 10)
                reply = await original(keys=keys, args=args)
                if partition == 1 and held.is_set():
                    p1_after.set()
                return reply

            monkeypatch.setattr(loop, "submit_at_once", polled)
            monkeypatch.setattr(consumer, "getmany", fetch_each)
            store._commit = hooked
            task = asyncio.create_task(runtime.worker.run())
            await asyncio.wait_for(p1_after.wait(), 60)  # partition 1 committed, 0's commit held
            await asyncio.sleep(1.5)  # partition 1 reports to Kafka meanwhile (at most once a second)
            seen["redis"] = applied_offsets(crashy)
            seen["kafka"] = await consumer.committed(TopicPartition(crashy.events_topic, 0))
            task.cancel()  # the crash
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(crash_with_partition_0_held())
    at_hold = seen["p0 at hold"]
    assert seen["redis"][0] == at_hold, "partition 0's held commit never landed: its offset may not move"
    assert at_hold is not None, "partition 0 had landed commits before the one held"
    assert seen["kafka"] is None or seen["kafka"] <= at_hold + 1
    assert seen["redis"][1] is not None and seen["redis"][1] > 0
    asyncio.run(run_worker_until(crashy, caught_up(crashy, ends), timeout=120))
    asyncio.run(run_worker_until(clean, caught_up(clean, ends), timeout=120))
    assert applied_offsets(crashy) == applied_offsets(clean)
    assert stored_customers(crashy) == stored_customers(clean)
