"""kill -9 in the middle of a stream, then restart: the same final state as a clean run, and every
transition id of the clean run on the topic."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, cast

import orjson
from kafka import KafkaConsumer, TopicPartition

from streams.bootstrap import keyspace
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.due_index import overdue
from streams.store.metrics_hash import running_workers
from tests.integration.worker_harness import (
    applied_offsets,
    make_settings,
    read_topic,
    run_worker_until,
    stored_customers,
)
from tests.services import Services


def end_offsets(settings: Settings) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        tps = [TopicPartition(settings.events_topic, p) for p in range(settings.topic_partitions)]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def caught_up(settings: Settings, ends: dict[int, int]) -> Callable[[], bool]:
    """Every event applied and no time-driven change pending at the partition's watermark."""
    client = sync_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    keys = keyspace(settings)

    def check() -> bool:
        offsets = applied_offsets(settings)
        if any(offsets[p] != ends[p] - 1 for p in ends if ends[p] > 0):
            return False
        for p in ends:
            watermark = client.hget(keys.partition_meta(p), "watermark")
            if watermark is not None and overdue(client, keys, p, int(watermark)) > 0:
                return False
        return True

    return check


def start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=settings.as_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def until_caught_up_and_reporting(settings: Settings, worker: subprocess.Popen[bytes]) -> None:
    """Wait (at most 120 s) until the worker applied the topic's end and reports in the metrics hash."""
    client = sync_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    metrics_key = keyspace(settings).metrics()
    done, deadline = caught_up(settings, end_offsets(settings)), time.monotonic() + 120
    try:
        while not (
            done() and running_workers(cast(dict[str, str], client.hgetall(metrics_key)), time.time())
        ):
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker did not catch up"
            time.sleep(0.1)
    finally:
        client.close()


def test_kill_9_mid_stream_then_restart_equals_a_clean_run(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    spec = sample.SampleSpec(customers=300, days=365, seed=7, malformed_share=0.01)
    clean = make_settings(services, topic_name, redis_prefix + "clean:", topic_partitions=4)
    crashy = clean.model_copy(
        update={
            "key_prefix": redis_prefix + "crashy",
            "group_id": topic_name("crashy-group"),
            "transitions_topic": topic_name("crashy-transitions"),
            "batch_max_events": 200,
        }
    )

    async def feed() -> int:
        from streams.bootstrap import ensure_topics

        await ensure_topics(clean)
        return await sample.produce(spec, clean.kafka_bootstrap, clean.events_topic)

    total = asyncio.run(feed())
    ends = end_offsets(clean)
    assert sum(ends.values()) == total

    asyncio.run(run_worker_until(clean, caught_up(clean, ends), timeout=180))

    worker = start_worker(crashy)
    try:
        deadline = time.monotonic() + 120
        while sum((o or 0) for o in applied_offsets(crashy).values()) < total // 4:
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.02)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        done_at_kill = sum((o or 0) for o in applied_offsets(crashy).values())
        assert done_at_kill < total - 10, "killed too late to prove anything"

        worker = start_worker(crashy)
        check = caught_up(crashy, ends)
        deadline = time.monotonic() + 180
        while not check():
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            assert time.monotonic() < deadline, "the restarted worker did not catch up"
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0  # graceful stop: finish the batch, flush, commit
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert stored_customers(crashy) == stored_customers(clean)

    async def ids(settings: Settings) -> list[Any]:
        return [orjson.loads(r.value)["id"] for r in await read_topic(settings, settings.transitions_topic)]

    clean_ids, crashy_ids = asyncio.run(ids(clean)), asyncio.run(ids(crashy))
    assert len(clean_ids) == len(set(clean_ids)), "a clean run publishes every transition once"
    assert set(crashy_ids) == set(clean_ids)
