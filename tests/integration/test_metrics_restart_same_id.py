"""The counters /metrics serves never go back when a worker restarts with the host name and pid of the one
before it: a container restarted in the same pod or container keeps its host name and runs the worker as pid 1
again. A counter that drops looks like a reset to Prometheus, which then counts the other workers' whole
totals as new (`rate`, `increase`: the dashboard's events/s spike, the dead-letter share is off).
The worker runs as pid 1 of a new pid namespace (`unshare`), each time, as it would in a container."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.keys import KeySpace
from streams.store.metrics_hash import prometheus
from tests.integration.worker_harness import applied_offsets, customer_key, make_settings, produce
from tests.services import Services


def can_run_as_pid_1() -> bool:
    if shutil.which("unshare") is None:
        return False
    argv = ["unshare", "--pid", "--fork", "/bin/sh", "-c", "echo $$"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode == 0 and done.stdout.strip() == "1"


def events_total(settings: Settings) -> int:
    """segstream_events_processed_total as the API serves it (the same exposition of the same hash)."""
    client = sync_client(settings.redis_url, decode_responses=True)
    try:
        row = client.hgetall(KeySpace(settings.key_prefix, "main", settings.events_topic).metrics())
    finally:
        client.close()
    for line in prometheus({str(k): str(v) for k, v in row.items()}, "main").splitlines():
        if line.startswith("segstream_events_processed_total{"):
            return int(line.rsplit(" ", 1)[1])
    raise AssertionError("no events counter")


def run_as_pid_1_until_applied(settings: Settings, count: int) -> None:
    """A worker process as pid 1 until `count` events are applied and reported, then killed (-9)."""
    proc = subprocess.Popen(
        ["unshare", "--pid", "--fork", sys.executable, "-m", "streams.cli", "worker"],
        env={**os.environ, **settings.as_environment()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while sum((o or -1) + 1 for o in applied_offsets(settings).values()) < count:
            assert proc.poll() is None and time.monotonic() < deadline, "the worker did not apply them"
            time.sleep(0.2)
        time.sleep(2.5)  # reported (every second per partition)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


@pytest.mark.skipif(not can_run_as_pid_1(), reason="needs `unshare --pid` (a worker as pid 1)")
def test_events_counter_does_not_go_back_when_a_worker_restarts_as_pid_1_again(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(
        services, topic_name, redis_prefix, topic_partitions=2, namespace="main", group_id=topic_name("g")
    )
    lines = list(sample.generate(sample.SampleSpec(customers=40, days=90, seed=9, limit=900)))
    first, second = lines[:800], lines[800:]
    asyncio.run(produce(settings, first, customer_key))
    run_as_pid_1_until_applied(settings, len(first))
    before = events_total(settings)
    assert before >= len(first)
    asyncio.run(produce(settings, second, customer_key))
    run_as_pid_1_until_applied(settings, len(lines))  # same host name, pid 1 again
    after = events_total(settings)
    assert after >= before + len(second), (before, after)
