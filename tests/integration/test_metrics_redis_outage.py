"""What monitoring shows across a Redis outage, on a real worker and a private redis-server killed and
restarted (its append-only file keeps everything): the worker reports again by itself once Redis is back
(fresh report times, lag 0, one worker running), the retries it made while Redis was gone are counted, and
the event counter neither went back nor counted an event twice."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable

from streams.bootstrap import worker_runtime
from streams.sample import generator as sample
from tests.integration.conftest import PORT
from tests.integration.test_monitoring import exposed, metrics_text
from tests.integration.worker_harness import applied_offsets, customer_key, make_settings, produce
from tests.services import Services


def value(samples: dict[str, list[str]], name: str, label: str = "") -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in samples[name] if label in line)


def test_metrics_across_a_redis_outage(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    private_redis: Callable[[], subprocess.Popen[bytes]],
) -> None:
    server = private_redis()
    settings = make_settings(
        services,
        topic_name,
        redis_prefix,
        topic_partitions=2,
        namespace="main",
        redis_url=f"redis://127.0.0.1:{PORT}/0",
        redis_timeout_s=1,
        retry_max_backoff_s=0.5,
    )
    lines = list(sample.generate(sample.SampleSpec(customers=30, days=60, seed=6, limit=600)))
    first, second = lines[:400], lines[400:]

    async def applied(count: int, task: asyncio.Task[None]) -> None:
        deadline = time.monotonic() + 60
        while sum((o or -1) + 1 for o in applied_offsets(settings).values()) < count:
            assert not task.done() and time.monotonic() < deadline, "the worker did not apply them"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # reported

    async def scenario() -> tuple[dict[str, list[str]], dict[str, list[str]], float]:
        nonlocal server
        async with worker_runtime(settings) as runtime:
            await produce(settings, first, customer_key)
            task = asyncio.create_task(runtime.worker.run())
            try:
                await applied(len(first), task)
                before = exposed(await metrics_text(settings))
                server.kill()
                server.wait()
                await produce(settings, second, customer_key)  # arrives while Redis is gone
                await asyncio.sleep(3)
                back_at = time.time()
                server = private_redis()
                await applied(len(lines), task)
                after = exposed(await metrics_text(settings))
            finally:
                runtime.worker.stop()
                await asyncio.wait_for(task, 30)
        return before, after, back_at

    before, after, back_at = asyncio.run(scenario())
    assert value(before, "segstream_events_processed_total") == len(first)
    assert value(after, "segstream_events_processed_total") == len(lines)  # none twice, none lost
    assert value(after, "segstream_workers_running") == 1
    seen = after["segstream_partition_last_report_timestamp_seconds"]
    reported = [float(x.rsplit(" ", 1)[1]) for x in seen]
    assert len(reported) == 2 and all(at > back_at for at in reported)  # reporting again
    lags = after["segstream_consumer_lag"]
    assert all(line.endswith(" 0") for line in lags), lags
    retried = value(after, "segstream_retries_total") - value(after, "segstream_retries_total", "fenced")
    assert retried > 0  # the outage shows in the retries the alerts read
