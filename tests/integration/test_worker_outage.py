"""Redis stops answering, then dies and comes back: the worker waits and retries, never moves past an
unapplied event, never applies one twice (ambiguous timeouts included). Uses its own redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable

from streams.bootstrap import ensure_topics, worker_runtime
from streams.sample import generator as sample
from tests.integration.conftest import PORT
from tests.integration.test_worker_kill import caught_up, end_offsets
from tests.integration.worker_harness import (
    applied_offsets,
    make_settings,
    run_worker_until,
    stored_customers,
)
from tests.services import Services


def test_worker_survives_a_hung_then_dead_redis_without_loss_or_double_count(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    private_redis: Callable[[], subprocess.Popen[bytes]],
) -> None:
    spec = sample.SampleSpec(customers=150, days=365, seed=5, malformed_share=0.01)
    clean = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    flaky = clean.model_copy(
        update={
            "redis_url": f"redis://127.0.0.1:{PORT}/0",
            "group_id": topic_name("flaky-group"),
            "transitions_topic": topic_name("flaky-transitions"),
            "batch_max_events": 100,
            "redis_timeout_s": 0.5,
            "retry_max_backoff_s": 0.5,
        }
    )

    async def feed() -> int:
        await ensure_topics(clean)
        return await sample.produce(spec, clean.kafka_bootstrap, clean.events_topic)

    total = asyncio.run(feed())
    ends = end_offsets(clean)
    asyncio.run(run_worker_until(clean, caught_up(clean, ends), timeout=120))

    server = private_redis()

    async def flaky_run() -> None:
        nonlocal server
        async with worker_runtime(flaky) as runtime:
            task = asyncio.create_task(runtime.worker.run())
            while sum((o or 0) for o in applied_offsets(flaky).values()) < total // 5:
                assert not task.done()
                await asyncio.sleep(0.01)
            os.kill(server.pid, signal.SIGSTOP)  # hung: commits time out, some land after SIGCONT
            await asyncio.sleep(2.0)
            os.kill(server.pid, signal.SIGCONT)
            while sum((o or 0) for o in applied_offsets(flaky).values()) < total // 2:
                assert not task.done()
                await asyncio.sleep(0.01)
            server.kill()  # dead: connections refused until it is back (AOF fsync always: nothing lost)
            server.wait()
            await asyncio.sleep(1.5)
            server = private_redis()
            check = caught_up(flaky, ends)
            deadline = time.monotonic() + 120
            while not check():
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, "did not catch up after the outage"
                await asyncio.sleep(0.1)
            assert runtime.worker.metrics.retries, "the outage should have been seen and retried"
            runtime.worker.stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(flaky_run())
    assert stored_customers(flaky) == stored_customers(clean)
