"""Scale-out: several worker processes on one group id (different batch sizes), one joining mid-stream, one
stopped with SIGTERM, one killed with -9, while events keep arriving: the same final Redis state and the
same transition ids as one worker alone, and every applied offset is the partition's last."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from streams.bootstrap import ensure_topics
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


def start_worker(settings: Settings, batch: int) -> subprocess.Popen[bytes]:
    env = settings.model_copy(update={"batch_max_events": batch}).as_environment()
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


async def send(settings: Settings, keyed: Sequence[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        futures = [await producer.send(settings.events_topic, value, key=key) for key, value in keyed]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def applied(settings: Settings) -> int:
    return sum(o + 1 for o in applied_offsets(settings).values() if o is not None)


def wait_applied(settings: Settings, at_least: int, workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 180
    while applied(settings) < at_least:
        for w in workers:
            assert w.poll() is None, w.stderr.read().decode() if w.stderr else ""
        assert time.monotonic() < deadline, f"stuck at {applied(settings)} of {at_least}"
        time.sleep(0.05)


def test_three_workers_joining_stopping_and_killed_equal_one_worker(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    spec = sample.SampleSpec(customers=300, days=365, seed=11, malformed_share=0.01)
    lines = list(sample.keyed(spec))
    clean = make_settings(services, topic_name, redis_prefix + "clean:", topic_partitions=6)
    scaled = clean.model_copy(
        update={
            "key_prefix": redis_prefix + "scaled",
            "group_id": topic_name("scaled-group"),
            "transitions_topic": topic_name("scaled-transitions"),
            "kafka_session_timeout_ms": 6000,
            "kafka_heartbeat_interval_ms": 1000,
        }
    )
    asyncio.run(ensure_topics(clean))
    half = len(lines) // 2
    asyncio.run(send(clean, lines[:half]))

    w1, w2 = start_worker(scaled, 200), start_worker(scaled, 50)
    workers = [w1, w2]
    w3: subprocess.Popen[bytes] | None = None
    try:
        wait_applied(scaled, half // 4, workers)
        w3 = start_worker(scaled, 1000)  # joins mid-stream
        workers.append(w3)
        asyncio.run(send(clean, lines[half:]))  # the stream goes on
        wait_applied(scaled, half // 2 + half // 4, workers)
        w1.send_signal(signal.SIGTERM)
        assert w1.wait(30) == 0, w1.stderr.read().decode() if w1.stderr else ""
        workers.remove(w1)
        wait_applied(scaled, half + half // 4, workers)
        os.kill(w2.pid, signal.SIGKILL)
        w2.wait(10)
        workers.remove(w2)
        assert applied(scaled) < len(lines) - 50, "killed too late to prove anything"
        ends = end_offsets(clean)
        assert sum(ends.values()) == len(lines)
        check = caught_up(scaled, ends)
        deadline = time.monotonic() + 240
        while not check():
            assert w3.poll() is None, w3.stderr.read().decode() if w3.stderr else ""
            assert time.monotonic() < deadline, "the last worker did not catch up"
            time.sleep(0.2)
        w3.send_signal(signal.SIGTERM)
        assert w3.wait(30) == 0
    finally:
        for w in (w1, w2, w3):
            if w is not None and w.poll() is None:
                w.kill()
                w.wait()

    asyncio.run(run_worker_until(clean, caught_up(clean, ends), timeout=240))
    assert applied_offsets(scaled) == applied_offsets(clean)
    assert stored_customers(scaled) == stored_customers(clean)

    async def ids(settings: Settings) -> list[Any]:
        return [orjson.loads(r.value)["id"] for r in await read_topic(settings, settings.transitions_topic)]

    clean_ids, scaled_ids = asyncio.run(ids(clean)), asyncio.run(ids(scaled))
    assert len(clean_ids) == len(set(clean_ids))
    assert set(scaled_ids) == set(clean_ids)
