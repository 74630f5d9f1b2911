"""A claim Redis refuses for good (here a damaged meta hash: its fence is no integer, so the claim script's
HINCRBY fails) is raised in aiokafka's rebalance callback, which only logs what its listener raises. The
partition stays paused (held since its assignment) and the worker runs on, applying nothing and saying
nothing more: it must stop instead, as a refused commit does, so its supervisor and the operator see it.
(A refusal that passes, such as OOM at `maxmemory`, is waited out instead:
tests/integration/test_redis_resource_faults.py.)"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from streams.bootstrap import worker_runtime
from streams.sample import generator as sample
from streams.store.keys import KeySpace
from tests.integration.test_worker_kill import caught_up, end_offsets
from tests.integration.worker_harness import make_settings, run_worker_until
from tests.services import Services


def free_port() -> int:
    for port in range(6540, 6600):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 6540-6599")


def test_a_claim_refused_by_redis_stops_the_worker_instead_of_leaving_its_partitions_paused(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs the redis-server binary to run a private server")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", ""],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        admin = redis.Redis(port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                admin.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "private redis-server did not start"
                time.sleep(0.05)
        settings = make_settings(
            services, topic_name, redis_prefix, redis_url=f"redis://127.0.0.1:{port}/0", topic_partitions=2
        )
        spec = sample.SampleSpec(customers=20, days=30, seed=3, malformed_share=0.0)

        async def feed() -> None:
            from streams.bootstrap import ensure_topics

            await ensure_topics(settings)
            await sample.produce(spec, settings.kafka_bootstrap, settings.events_topic)

        asyncio.run(feed())
        asyncio.run(run_worker_until(settings, caught_up(settings, end_offsets(settings)), timeout=60))
        keys = KeySpace(settings.key_prefix, "main", settings.events_topic)
        for partition in range(settings.topic_partitions):
            admin.hset(keys.partition_meta(partition), "fence", "x")  # damaged: no retry makes it claimable

        async def scenario() -> BaseException | None:
            async with worker_runtime(settings) as runtime:
                task = asyncio.create_task(runtime.worker.run())
                try:
                    await asyncio.wait_for(asyncio.shield(task), 30)
                except TimeoutError:
                    runtime.worker.stop()
                    await asyncio.wait_for(task, 30)
                    return None
                except Exception as exc:
                    return exc
                return None

        failure = asyncio.run(scenario())
        assert failure is not None, "the worker ran on with its partitions paused, never claimed"
        assert "not an integer" in str(failure), failure
    finally:
        server.kill()
        server.wait()
