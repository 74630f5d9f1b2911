"""Faults that used to stall the worker without a word: a Redis restored from an older snapshot, a dead
letter too large for its topic, a SIGTERM while Redis hangs. Real Kafka, real Redis."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaProducer

from streams.bootstrap import ensure_topics, worker_runtime
from streams.sample import generator as sample
from streams.store.connection import sync_client
from tests.integration.conftest import PORT
from tests.integration.test_worker_kill import caught_up, end_offsets
from tests.integration.worker_harness import (
    applied_offsets,
    make_settings,
    read_topic,
    run_worker_until,
    stored_customers,
)
from tests.services import Services

_BATCH_IN_HAND = re.compile(r"(load states|commit state) failed .*; retrying")
"""The worker's word that a batch of events is in hand and Redis will not take it (`worker.retry`)."""


def _lines_of(process: subprocess.Popen[bytes]) -> list[str]:
    """The process's stderr lines as they come (a thread drains the pipe: the process never blocks on it)."""
    lines: list[str] = []

    def drain() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            lines.append(raw.decode(errors="replace"))

    threading.Thread(target=drain, daemon=True).start()
    return lines


def _dump(url: str, prefix: str) -> dict[bytes, bytes]:
    client = sync_client(url)
    try:
        return {k: client.dump(k) for k in client.scan_iter(match=f"{prefix}*", count=1000)}  # type: ignore[misc]
    finally:
        client.close()


def _restore(url: str, prefix: str, snapshot: dict[bytes, bytes]) -> None:
    """Redis as it was at the snapshot: every key of the prefix written since is gone or older."""
    client = sync_client(url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        for key, value in snapshot.items():
            client.restore(key, 0, value, replace=True)
    finally:
        client.close()


def test_a_redis_restored_from_an_older_snapshot_is_claimed_again_and_caught_up(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """Finding 7: the stored fence is below the worker's own claim. It used to refuse every commit as fenced
    and sit alive with zero progress; it now claims again, resumes from what Redis holds, and ends equal to
    a run without the fault."""
    spec = sample.SampleSpec(customers=150, days=365, seed=11)
    clean = make_settings(services, topic_name, redis_prefix + "clean:", topic_partitions=2)
    restored = clean.model_copy(
        update={"key_prefix": redis_prefix + "restored", "group_id": topic_name("restored-group")}
    )

    async def feed() -> int:
        await ensure_topics(clean)
        return await sample.produce(spec, clean.kafka_bootstrap, clean.events_topic)

    total = asyncio.run(feed())
    ends = end_offsets(clean)
    asyncio.run(run_worker_until(clean, caught_up(clean, ends), timeout=120))

    slow = restored.model_copy(update={"batch_max_events": 50})

    def done(share: float) -> Callable[[], bool]:
        return lambda: sum((o or 0) for o in applied_offsets(slow).values()) >= total * share

    asyncio.run(run_worker_until(slow, done(0.25), timeout=120))  # a first owner, then the backup
    snapshot = _dump(slow.redis_url, slow.key_prefix)

    async def second_owner() -> None:
        async with worker_runtime(slow) as runtime:
            task = asyncio.create_task(runtime.worker.run())
            while not done(0.6)():
                assert not task.done(), task.exception()
                await asyncio.sleep(0.01)
            _restore(slow.redis_url, slow.key_prefix, snapshot)  # its claim is now above the stored fence
            check, deadline = caught_up(slow, ends), time.monotonic() + 120
            while not check():
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, "no progress after the restore"
                await asyncio.sleep(0.1)
            assert runtime.worker.metrics.retries["rewound"] >= 1
            runtime.worker.stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(second_owner())
    assert stored_customers(slow) == stored_customers(clean)


def test_a_dead_letter_too_large_for_its_topic_is_cut_to_fit_and_the_stream_goes_on(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """Finding 6: a record accepted near the events topic's size limit no longer fits once the dead-letter
    headers are added; the producer error was retried forever and every partition stopped."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1)
    body = {
        "type": "web_visit",
        "event_id": "big",
        "customer_id": "c1",
        "occurred_at": "2026-03-01T10:00:00+00:00",
        "schema_version": 1,
    }
    prefix = orjson.dumps(body)[:-1] + b',"junk":"'
    huge = (
        prefix + b"x" * (1_048_300 - len(prefix) - 2) + b'"}'
    )  # valid JSON, an invalid event (unknown field)
    after = orjson.dumps({**body, "event_id": "after", "page": "/home"})

    async def feed() -> None:
        await ensure_topics(settings)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(settings.events_topic, huge, key=b"c1")
            await producer.send_and_wait(settings.events_topic, after, key=b"c1")
        finally:
            await producer.stop()

    asyncio.run(feed())
    asyncio.run(run_worker_until(settings, lambda: applied_offsets(settings)[0] == 1, timeout=60))

    dead = asyncio.run(read_topic(settings, settings.dlq_topic, expect_at_least=1))
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["__connect.errors.offset"] == "0"
    assert headers["__segstream.original.value.truncated"] == "true"
    assert headers["__segstream.original.value.size"] == str(len(huge))
    assert headers["__segstream.original.value.sha256"] == hashlib.sha256(huge).hexdigest()
    assert dead[0].value == huge[: settings.dlq_max_value_bytes]
    assert "c1" in stored_customers(settings)  # the event after it was applied


def test_sigterm_stops_a_worker_stuck_on_a_hung_redis_within_the_stop_timeout(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    private_redis: Callable[[], subprocess.Popen[bytes]],
) -> None:
    """Finding 6: SIGTERM must always stop the worker within a bounded time, even when the batch in hand
    cannot be committed (Redis hung): what was not committed is applied again on restart."""
    server = private_redis()
    settings = make_settings(
        services,
        topic_name,
        redis_prefix,
        redis_url=f"redis://127.0.0.1:{PORT}/0",
        redis_timeout_s=0.5,
        retry_max_backoff_s=0.5,
        stop_timeout_s=3.0,
        # No time-driven sweep after the first: its due-index read would hold the poll loop while Redis
        # hangs, and the second feed would never be fetched into a batch in hand.
        sweep_interval_ms=3_600_000,
    )
    spec = sample.SampleSpec(customers=50, days=90, seed=3)

    async def feed() -> int:
        await ensure_topics(settings)
        return await sample.produce(spec, settings.kafka_bootstrap, settings.events_topic)

    total = asyncio.run(feed())
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=settings.as_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    said = _lines_of(worker)
    try:
        deadline = time.monotonic() + 60
        # Caught up is logged after the poll loop's first sweep of every partition (the only one this hour).
        while not any("segstream.worker: caught up:" in line for line in list(said)):
            assert worker.poll() is None, "".join(said)
            assert time.monotonic() < deadline, "the worker did not catch up:\n" + "".join(said)
            time.sleep(0.05)
        os.kill(server.pid, signal.SIGSTOP)  # hung: every Redis call times out and is retried
        # More events while Redis hangs: the worker may have applied the whole first feed already (a busy
        # machine is enough). The stop must face a batch in hand that cannot be committed, so it waits for
        # the worker to say so (a retry of that batch's load or commit), however long a busy machine takes.
        more = sample.SampleSpec(customers=50, days=30, seed=4)
        asyncio.run(sample.produce(more, settings.kafka_bootstrap, settings.events_topic))
        deadline = time.monotonic() + 60
        while not any(_BATCH_IN_HAND.search(line) for line in list(said)):
            assert worker.poll() is None, "".join(said)
            assert time.monotonic() < deadline, "no batch in hand while Redis hangs:\n" + "".join(said)
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = worker.wait(30)
        assert time.monotonic() - started < 20
        assert code == 5, "".join(said)
    finally:
        os.kill(server.pid, signal.SIGCONT)
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert sum((o or 0) for o in applied_offsets(settings).values()) < total
