"""A commit held longer than the group allows (the rebalance timeout, which aiokafka sets to the session
timeout, and max.poll.interval): the group gives the partitions to another worker of the same group id, whose
claim fences the held commit out. Nothing is lost or applied twice, and the slow worker goes on (it rejoins),
neither stopping nor stalling. Forced with a delay in the slow worker's commit script call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from streams.bootstrap import ensure_topics, worker_runtime
from streams.sample import generator as sample
from streams.settings import Settings
from tests.integration.test_worker_kill import caught_up, end_offsets
from tests.integration.worker_harness import (
    applied_offsets,
    make_settings,
    read_topic,
    run_worker_until,
    stored_customers,
)
from tests.services import Services


@pytest.mark.parametrize("short_poll_interval", [False, True])
def test_a_commit_held_past_the_rebalance_timeout_is_fenced_and_nothing_is_lost(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, short_poll_interval: bool
) -> None:
    spec = sample.SampleSpec(customers=120, days=200, seed=5, malformed_share=0.0)
    clean = make_settings(services, topic_name, redis_prefix + "clean:", topic_partitions=2)
    group = clean.model_copy(
        update={
            "key_prefix": redis_prefix + "group",
            "group_id": topic_name("two-group"),
            "transitions_topic": topic_name("two-transitions"),
            "kafka_session_timeout_ms": 6000,
            "kafka_heartbeat_interval_ms": 1000,
            "batch_max_events": 100,
            "fenced_grace_s": 120,
        }
    )

    async def feed() -> int:
        await ensure_topics(clean)
        return await sample.produce(spec, clean.kafka_bootstrap, clean.events_topic)

    total = asyncio.run(feed())
    ends = end_offsets(clean)
    done = caught_up(group, ends)
    outcome: dict[str, Any] = {}

    async def scenario() -> None:
        held, joined = asyncio.Event(), asyncio.Event()
        async with worker_runtime(group) as slow:
            if short_poll_interval:  # max.poll.interval passes while the loop waits for the held commit
                slow.worker.consumer._coordinator._max_poll_interval = 3.0  # type: ignore[union-attr]
            store: Any = slow.worker.store
            original = store._commit
            commits = {"fenced": 0}

            async def hooked(keys: Any, args: Any) -> Any:
                if not held.is_set() and sum((o or 0) for o in applied_offsets(group).values()) > total // 3:
                    held.set()
                    await joined.wait()
                    await asyncio.sleep(15)  # longer than the rebalance timeout (6 s) and the poll interval
                try:
                    return await original(keys=keys, args=args)
                except Exception as exc:
                    if "FENCED" in str(exc):
                        commits["fenced"] += 1
                    raise

            store._commit = hooked
            slow_task = asyncio.create_task(slow.worker.run())
            await asyncio.wait_for(held.wait(), 60)
            async with worker_runtime(group) as fast:
                fast_task = asyncio.create_task(fast.worker.run())
                joined.set()
                deadline = time.monotonic() + 120
                while not done():
                    for task in (slow_task, fast_task):
                        if task.done():
                            task.result()
                            raise AssertionError("a worker stopped by itself")
                    assert time.monotonic() < deadline, f"not caught up: {applied_offsets(group)}"
                    await asyncio.sleep(0.2)
                await asyncio.sleep(20)  # the held commit is answered by now; both workers still run
                for task in (slow_task, fast_task):
                    if task.done():
                        task.result()
                        raise AssertionError("a worker stopped by itself")
                outcome["fenced"] = commits["fenced"]
                fast.worker.stop()
                await asyncio.wait_for(fast_task, 30)
            slow.worker.stop()
            await asyncio.wait_for(slow_task, 30)

    asyncio.run(scenario())
    asyncio.run(run_worker_until(clean, caught_up(clean, ends), timeout=180))
    assert outcome["fenced"] >= 1, "the held commit was not fenced: the scenario proved nothing"
    assert applied_offsets(group) == applied_offsets(clean)
    assert stored_customers(group) == stored_customers(clean)

    async def ids(settings: Settings) -> list[Any]:
        return [orjson.loads(r.value)["id"] for r in await read_topic(settings, settings.transitions_topic)]

    clean_ids, group_ids = asyncio.run(ids(clean)), asyncio.run(ids(group))
    assert set(group_ids) == set(clean_ids)
