"""A live worker declares every ordinal chunk its commits write (commit.lua, "ordinal map keys") without a
second attempt, also when it prepares a batch while the previous commit is in flight: one event per batch,
customers created, erased and created again across batches and across a chunk boundary (128 ordinals). Its
ordinal map then holds exactly the customers alive, each at the ordinal of its last lifetime."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from streams.bootstrap import keyspace, worker_runtime
from streams.store.connection import sync_client
from streams.store.membership import CHUNK
from tests.integration.test_worker_history import T0, ev, purchase
from tests.integration.worker_harness import applied_offsets, customer_key, make_settings, produce
from tests.services import Services

pytestmark = pytest.mark.cluster  # make test runs it on a Redis Cluster too

CUSTOMERS = 140  # one partition: ordinals across chunks 0 and 1
ERASED = {f"c{n:03d}" for n in range(0, CUSTOMERS, 7)}
BACK = {f"c{n:03d}" for n in range(0, CUSTOMERS, 14)}  # erased, then buying again: a new lifetime


def test_a_pipelined_worker_declares_every_chunk_first_time(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1, batch_max_events=1)
    ids = [f"c{n:03d}" for n in range(CUSTOMERS)]
    lines = []
    for n, cid in enumerate(ids):  # back to back: the open's batch is made while the purchase's commits
        lines.append(purchase(f"{cid}-o1", cid, T0 + timedelta(minutes=n)))
        lines.append(ev(f"{cid}-m", "email_open", cid, T0 + timedelta(minutes=n, seconds=30)))
    lines += [ev(f"{cid}-x", "customer_erased", cid, T0 + timedelta(days=2)) for cid in sorted(ERASED)]
    lines += [purchase(f"{cid}-o2", cid, T0 + timedelta(days=3)) for cid in sorted(BACK)]

    async def run() -> int:
        await produce(settings, lines, customer_key)
        async with worker_runtime(settings) as runtime:
            task = asyncio.create_task(runtime.worker.run())
            deadline = time.monotonic() + 120
            try:
                while (applied_offsets(settings).get(0) or -1) + 1 < len(lines):
                    assert not task.done(), task.result()
                    assert time.monotonic() < deadline, "the worker did not apply every event in time"
                    await asyncio.sleep(0.1)
            finally:
                runtime.worker.stop()
                await asyncio.wait_for(task, 30)
            return int(runtime.worker.store.chunk_refusals)  # type: ignore[attr-defined]

    refusals = asyncio.run(run())
    keys = keyspace(settings)
    client = sync_client(settings.redis_url, decode_responses=True)
    try:
        counter = int(client.hget(keys.partition_meta(0), "ordinals") or 0)
        stored: dict[int, str] = {}
        for chunk in range((counter + CHUNK - 1) // CHUNK):
            for field, owner in client.hgetall(keys.ordinals(0, chunk)).items():
                stored[chunk * CHUNK + int(field)] = str(owner)
        ordinals = {cid: client.hget(keys.customer(0, cid), "_o") for cid in ids}
    finally:
        client.close()
    alive = [cid for cid in ids if cid not in ERASED or cid in BACK]
    assert counter == CUSTOMERS + len(BACK)  # a lifetime each, and one more for those who came back
    assert sorted(stored.values()) == sorted(alive)
    assert {cid: int(str(ordinals[cid])) for cid in alive} == {cid: o for o, cid in stored.items()}
    assert all(ordinals[cid] is None for cid in ERASED - BACK)
    assert refusals == 0, "a commit went twice: the worker did not know a chunk it wrote"
