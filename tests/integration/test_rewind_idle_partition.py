"""Redis back in the past while the worker's partitions are idle: the lost commits must be applied again
without waiting for the partition's next event.

Found in review on 7 December 2026: the worker learned that Redis lost writes only from the read before a
batch or a sweep, or from a commit. A partition that received nothing more (a quiet partition, nobody due:
a live stream between bursts) kept Redis without the events of its lost commits (purchases, orders,
segments) for as long as it stayed quiet, while the worker reported lag 0. Real Kafka, real Redis; the
rewind is forced by restoring the partition's keys as they were before the last events (what an AOF
`everysec` loses on an OS crash).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson

from streams.bootstrap import ensure_topics, worker_runtime
from tests.integration.test_worker_faults import _dump, _restore
from tests.integration.test_worker_kill import end_offsets
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    stored_customers,
)
from tests.services import Services

CUSTOMERS = ("q1", "q2", "q3", "q4", "q5", "q6")


def _purchases(first: int, count: int) -> list[bytes]:
    """Purchases dated a few minutes ago: a live worker has nobody due for weeks."""
    at = datetime.now(UTC) - timedelta(minutes=10)
    return [
        orjson.dumps(
            {
                "event_id": f"e{n}",
                "type": "purchase",
                "customer_id": CUSTOMERS[n % len(CUSTOMERS)],
                "occurred_at": (at + timedelta(seconds=n)).isoformat(),
                "schema_version": 1,
                "order_id": f"o{n}",
                "amount": "10.00",
                "currency": "EUR",
                "channel": "web",
            }
        )
        for n in range(first, first + count)
    ]


def test_commits_redis_lost_on_an_idle_partition_are_applied_again_without_a_new_event(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, mode="live", sweep_interval_ms=100)

    def applied_all() -> bool:
        ends = end_offsets(settings)
        offsets = applied_offsets(settings)
        return all(offsets[p] == ends[p] - 1 for p in ends if ends[p] > 0)

    async def wait(condition: Callable[[], bool], task: asyncio.Task[None], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not condition():
            assert not task.done(), task.exception()
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def body() -> bool:
        await ensure_topics(settings)
        await produce(settings, _purchases(0, 12), customer_key)
        async with worker_runtime(settings) as runtime:
            task = asyncio.create_task(runtime.worker.run())
            try:
                assert await wait(applied_all, task, 60), "the first events were never applied"
                snapshot = _dump(settings.redis_url, settings.key_prefix)
                await produce(settings, _purchases(12, 12), customer_key)
                assert await wait(applied_all, task, 60), "the second events were never applied"
                await asyncio.sleep(1.5)  # the worker idle: every partition reported once more
                _restore(settings.redis_url, settings.key_prefix, snapshot)  # the second events' commits lost
                assert not applied_all()
                return await wait(applied_all, task, 10)  # nothing new arrives
            finally:
                runtime.worker.stop()
                await asyncio.wait_for(task, 30)

    caught_up_again = asyncio.run(body())
    orders = {cid: int(row["orders"]) for cid, row in stored_customers(settings).items()}
    assert caught_up_again, f"Redis still lacks the lost commits 10 s later: orders {orders}"
    assert orders == {cid: 4 for cid in CUSTOMERS}
