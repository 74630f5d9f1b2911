"""A worker started in another SEGSTREAM_MODE than the workers running on its namespace (a second shell
without `export SEGSTREAM_MODE=replay`, say) would join their group and apply its partitions by another
clock: live, events dated more than a day after their record's time become dead letters and caught-up
partitions are swept by the wall clock, replay neither; the result would depend on which worker Kafka gave
which partition. It is refused at start-up (exit 3, one line) before it joins the group; so is one with other
settings that change what it writes (output topics, history kept, dead letters cut)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from streams.bootstrap import worker_runtime
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import sync_client
from tests.integration.worker_harness import make_settings
from tests.services import Services


def _beside_a_running_worker(settings: Settings, **other: Any) -> subprocess.CompletedProcess[bytes]:
    """Start a worker process with `other` settings while a worker with `settings` runs and reports."""
    spec = sample.SampleSpec(customers=10, days=20, seed=2, malformed_share=0.0)
    metrics_key = f"{settings.key_prefix}:main:metrics"
    client = sync_client(settings.redis_url, decode_responses=True)

    async def scenario() -> subprocess.CompletedProcess[bytes]:
        async with worker_runtime(settings) as runtime:
            task = asyncio.create_task(runtime.worker.run())
            await sample.produce(spec, settings.kafka_bootstrap, settings.events_topic)
            deadline = time.monotonic() + 30
            while not any(str(k).endswith(":updated_at") for k in client.hkeys(metrics_key)):
                assert time.monotonic() < deadline, "the first worker never reported"
                await asyncio.sleep(0.2)
            second = settings.model_copy(update={**other, "connect_timeout_s": 5})
            try:
                proc = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-m", "streams.cli", "worker"],
                    env=second.as_environment(),
                    capture_output=True,
                    timeout=25,
                )
            except subprocess.TimeoutExpired:
                proc = subprocess.CompletedProcess([], -1, b"", b"(still running after 25 s)")
            assert not task.done()
            runtime.worker.stop()
            await asyncio.wait_for(task, 30)
            return proc

    try:
        return asyncio.run(scenario())
    finally:
        client.close()


def _refusal(proc: subprocess.CompletedProcess[bytes]) -> str:
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def test_a_worker_in_another_mode_than_the_running_ones_is_refused(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix)  # replay mode
    last = _refusal(_beside_a_running_worker(settings, mode="live"))
    assert last.startswith("segstream worker: workers of namespace 'main' run in another mode"), last
    assert "(replay); this one has SEGSTREAM_MODE=live" in last, last


def test_a_worker_writing_elsewhere_or_keeping_another_history_is_refused(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """A second shell with another transitions topic would split the namespace's transitions over two topics
    by partition; another history size would keep 8 entries for some customers and 64 for others."""
    settings = make_settings(services, topic_name, redis_prefix)
    other = {"transitions_topic": topic_name("other-transitions"), "history_size": 8}
    last = _refusal(_beside_a_running_worker(settings, **other))
    assert last.startswith("segstream worker: workers of namespace 'main' run with other settings:"), last
    assert f"SEGSTREAM_TRANSITIONS_TOPIC={settings.transitions_topic}" in last, last
    assert f"SEGSTREAM_HISTORY_SIZE={settings.history_size}" in last, last
    assert "SEGSTREAM_DLQ_TOPIC" not in last.partition("; this one has")[0], last  # the same: not named
