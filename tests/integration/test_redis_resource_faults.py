"""Redis refusing writes for a while (at `maxmemory`, turned read-only, busy with another client's script):
the worker waits, commits nothing past what it applied, and ends where a run without the fault ends. Each
fault is injected on a redis-server of the test's own (ports 6600-6699), never on the shared one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import redis

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

pytestmark = pytest.mark.integration


def _url(client: redis.Redis) -> str:
    return f"redis://127.0.0.1:{client.connection_pool.connection_kwargs['port']}/0"


def _applied(settings: Settings) -> int:
    return sum((o or 0) + 1 for o in applied_offsets(settings).values() if o is not None)


async def _ids(settings: Settings) -> set[str]:
    return {orjson.loads(r.value)["id"] for r in await read_topic(settings, settings.transitions_topic)}


def _clean_and_faulty(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, url: str
) -> tuple[Settings, Settings, int, dict[int, int]]:
    """A sample on a fresh topic, applied by a worker without faults (the reference), and the settings of
    a second worker of the same topic on the private Redis."""
    spec = sample.SampleSpec(customers=120, days=365, seed=11, malformed_share=0.01)
    clean = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    faulty = clean.model_copy(
        update={
            "redis_url": url,
            "group_id": topic_name("faulty-group"),
            "transitions_topic": topic_name("faulty-transitions"),
            "batch_max_events": 100,
            "retry_max_backoff_s": 0.2,
        }
    )

    async def feed() -> int:
        await ensure_topics(clean)
        return await sample.produce(spec, clean.kafka_bootstrap, clean.events_topic)

    total = asyncio.run(feed())
    ends = end_offsets(clean)
    asyncio.run(run_worker_until(clean, caught_up(clean, ends), timeout=180))
    return clean, faulty, total, ends


def _run_through(
    faulty: Settings,
    total: int,
    ends: dict[int, int],
    fault: Callable[[], int],
    held: Callable[[int], Awaitable[None]],
    lift: Callable[[], object],
) -> Any:
    """Run the worker on the private Redis; at a fifth of the log inject `fault` (it returns the applied
    count at the fault), let `held` check the worker during it, `lift` it, and wait until caught up."""

    async def body() -> Any:
        async with worker_runtime(faulty) as runtime:
            task = asyncio.create_task(runtime.worker.run())
            deadline = time.monotonic() + 120
            while _applied(faulty) < total // 5:
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, "no progress before the fault"
                await asyncio.sleep(0.005)
            at_fault = fault()
            assert at_fault < total - 200, "the fault came too late to prove anything"
            try:
                await held(at_fault)
                assert not task.done(), f"the worker stopped during the fault: {task.exception()!r}"
            finally:
                lift()
            check, deadline = caught_up(faulty, ends), time.monotonic() + 120
            while not check():
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, "did not catch up once the fault was lifted"
                await asyncio.sleep(0.1)
            runtime.worker.stop()
            await asyncio.wait_for(task, 30)
            return runtime.worker.metrics.retries

    return asyncio.run(body())


def test_redis_at_maxmemory_stalls_the_worker_until_memory_is_raised_then_equals_a_clean_run(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    own_redis: Callable[..., redis.Redis],
) -> None:
    server = own_redis("--maxmemory-policy", "noeviction", "--hash-max-listpack-value", "4096")
    clean, faulty, total, ends = _clean_and_faulty(services, topic_name, redis_prefix, _url(server))

    def full() -> int:  # every write command (and the commit script) now answers OOM
        server.config_set("maxmemory", 1)
        return _applied(faulty)

    async def held(at_fault: int) -> None:
        await asyncio.sleep(3)
        assert _applied(faulty) == at_fault, "a commit went through at maxmemory"

    retries = _run_through(faulty, total, ends, full, held, lambda: server.config_set("maxmemory", 0))
    assert retries.get("commit state"), "the refused commits should have been retried"
    assert stored_customers(faulty) == stored_customers(clean)
    assert asyncio.run(_ids(faulty)) == asyncio.run(_ids(clean))


@pytest.mark.parametrize("refusal", ["READONLY", "NOREPLICAS"])
def test_redis_refusing_writes_stalls_the_worker_until_writable_then_equals_a_clean_run(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    own_redis: Callable[..., redis.Redis],
    refusal: str,
) -> None:
    """READONLY: the server made a replica of a primary that is not there (it keeps its data, refuses
    writes); NOREPLICAS: `min-replicas-to-write 1` with no replica."""
    server = own_redis("--hash-max-listpack-value", "4096")
    clean, faulty, total, ends = _clean_and_faulty(services, topic_name, redis_prefix, _url(server))

    def refuse() -> int:
        if refusal == "READONLY":
            server.replicaof("127.0.0.1", 6699)  # nothing listens there
        else:
            server.config_set("min-replicas-to-write", 1)
        return _applied(faulty)

    def lift() -> None:
        if refusal == "READONLY":
            server.replicaof("NO", "ONE")
        else:
            server.config_set("min-replicas-to-write", 0)

    async def held(at_fault: int) -> None:
        await asyncio.sleep(3)
        assert _applied(faulty) == at_fault, "a commit went through while Redis refused writes"

    retries = _run_through(faulty, total, ends, refuse, held, lift)
    assert retries.get("commit state"), "the refused commits should have been retried"
    assert stored_customers(faulty) == stored_customers(clean)
    assert asyncio.run(_ids(faulty)) == asyncio.run(_ids(clean))


_SPIN = """local t0 = redis.call('TIME')
local until_us = (t0[1] * 1000000 + t0[2]) + tonumber(ARGV[1]) * 1000
repeat local t = redis.call('TIME') until t[1] * 1000000 + t[2] >= until_us
return 1"""


@pytest.mark.parametrize("stall", ["BUSY", "PAUSE"])
def test_another_clients_long_script_or_a_write_pause_loses_and_doubles_nothing(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    own_redis: Callable[..., redis.Redis],
    stall: str,
) -> None:
    """BUSY: another client's read-only script spins 3 s (Redis answers BUSY after 100 ms); PAUSE:
    `CLIENT PAUSE 3000 WRITE`, longer than the worker's 0.5 s Redis timeout (commits time out, are sent
    again, and may land twice: the second must be a no-op)."""
    server = own_redis("--hash-max-listpack-value", "4096", "--busy-reply-threshold", "100")
    clean, faulty, total, ends = _clean_and_faulty(services, topic_name, redis_prefix, _url(server))
    faulty = faulty.model_copy(update={"redis_timeout_s": 0.5})
    other = redis.Redis(port=server.connection_pool.connection_kwargs["port"])
    spinner: list[asyncio.Future[Any]] = []

    def stop_it() -> int:
        at = _applied(faulty)
        if stall == "BUSY":
            spinner.append(asyncio.get_running_loop().run_in_executor(None, other.eval, _SPIN, 0, 3000))
        else:
            other.client_pause(3000, all=False)
        return at

    async def held(at_fault: int) -> None:  # no look at Redis meanwhile: it is stalled for us too
        await asyncio.sleep(3.5)
        if spinner:
            await spinner[0]

    _run_through(faulty, total, ends, stop_it, held, lambda: None)
    assert stored_customers(faulty) == stored_customers(clean)
    assert asyncio.run(_ids(faulty)) == asyncio.run(_ids(clean))


def test_a_claim_refused_at_maxmemory_is_retried_not_left_paused(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    own_redis: Callable[..., redis.Redis],
) -> None:
    """Redis fills up just as a partition is assigned: the claim (in aiokafka's rebalance callback, which
    only logs an exception) must wait for memory, not leave the partition paused and unclaimed for ever."""
    server = own_redis("--maxmemory-policy", "noeviction", "--hash-max-listpack-value", "4096")
    clean, faulty, total, ends = _clean_and_faulty(services, topic_name, redis_prefix, _url(server))
    refused: list[int] = []

    async def body() -> None:
        async with worker_runtime(faulty) as runtime:
            store = runtime.worker.store
            real = store.claim

            async def claim_when_full(partition: int) -> Any:
                if not refused:  # the first claim meets a full Redis, memory raised 2 s later
                    server.config_set("maxmemory", 1)
                    asyncio.get_running_loop().call_later(2, server.config_set, "maxmemory", 0)
                refused.append(partition)
                return await real(partition)

            store.claim = claim_when_full  # type: ignore[method-assign]
            task = asyncio.create_task(runtime.worker.run())
            check, deadline = caught_up(faulty, ends), time.monotonic() + 90
            while not check():
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, f"never caught up: {_applied(faulty)} of {total} applied"
                await asyncio.sleep(0.1)
            runtime.worker.stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(body())
    assert len(refused) > 2, "the refused claim should have been sent again"
    assert stored_customers(faulty) == stored_customers(clean)
