"""Effectively once, no lost transition, nothing dropped: duplicates, crashes between publish and commit,
fencing, and dead letters, on the real broker and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import orjson
import pytest

from segmentation import Definitions
from segmentation.state_mapping import state_to_mapping
from streams.bootstrap import keyspace, worker_runtime
from streams.store.connection import async_client, sync_client
from streams.store.metrics_hash import prometheus
from streams.store.port import Claim, CustomerWrite, Fenced
from streams.store.redis_store import RedisStateStore
from tests.integration.test_worker_history import T0, ev, expected, history, public, purchase
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    read_topic,
    run_worker_until,
    stored_customers,
)
from tests.services import Services

pytestmark = pytest.mark.cluster  # make test runs these on a Redis Cluster too


def _all_applied(settings: Any, total: int) -> Callable[[], bool]:
    return lambda: sum((o if o is not None else -1) + 1 for o in applied_offsets(settings).values()) == total


def test_a_duplicate_event_counts_once(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix)
    once = [purchase("d1", "dora", T0), purchase("d2", "dora", T0 + timedelta(days=3))]
    lines = [once[0], once[0], once[1], once[0]]  # redelivered by a producer retry, say

    async def scenario() -> None:
        await produce(settings, lines, customer_key)
        await run_worker_until(settings, _all_applied(settings, len(lines)))

    asyncio.run(scenario())
    want, _ = expected(once, Definitions.default())
    stored = stored_customers(settings)["dora"]
    assert public(stored) == state_to_mapping(want["dora"])
    assert stored["orders"] == "2"
    # skipped, yet not silently: the worker's duplicates counter (/metrics) says how many
    client = sync_client(settings.redis_url, decode_responses=True)
    try:
        row: dict[str, str] = client.hgetall(keyspace(settings).metrics())  # type: ignore[assignment]
    finally:
        client.close()
    assert sum(int(v) for k, v in row.items() if k.startswith("w:") and k.endswith(":duplicates")) == 2
    assert 'segstream_duplicate_events_total{namespace="main"} 2' in prometheus(row, "main")


class SimulatedCrash(Exception):
    """Stands for the process dying: nothing after it runs."""


class CrashAfterPublish(RedisStateStore):
    """A store whose first commit dies as a process would between steps 4 and 5 of the commit order."""

    crashed = False

    async def commit(
        self, claim: Claim, offset: int | None, watermark_us: int | None, writes: Sequence[CustomerWrite]
    ) -> None:
        if offset is not None and not CrashAfterPublish.crashed:
            CrashAfterPublish.crashed = True
            raise SimulatedCrash("simulated crash after publishing, before the state commit")
        await super().commit(claim, offset, watermark_us, writes)


def test_a_batch_redelivered_after_a_crash_is_applied_once_and_republished_with_the_same_ids(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1)
    lines = history()
    want_states, want_transitions = expected(lines, Definitions.default())

    async def crash_once() -> None:
        async with worker_runtime(settings) as runtime:
            runtime.worker.store = CrashAfterPublish(runtime.redis, keyspace(settings))
            with pytest.raises(SimulatedCrash):
                await asyncio.wait_for(runtime.worker.run(), 60)

    async def scenario() -> list[Any]:
        await produce(settings, lines, customer_key)
        await crash_once()
        assert applied_offsets(settings) == {0: None}  # nothing committed: the crash came first
        await run_worker_until(settings, _all_applied(settings, len(lines)))
        return await read_topic(settings, settings.transitions_topic, len(want_transitions))

    records = asyncio.run(scenario())
    assert CrashAfterPublish.crashed
    assert {c: public(r) for c, r in stored_customers(settings).items()} == {
        c: state_to_mapping(s) for c, s in want_states.items()
    }
    ids = [orjson.loads(r.value)["id"] for r in records]
    want_ids = [t.id for t in want_transitions]
    assert set(ids) == set(want_ids)  # nothing lost, nothing invented
    assert len(ids) == 2 * len(want_ids)  # published before the crash and again after: same ids


def test_a_fenced_worker_cannot_write(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """A worker that lost its partition (a newer claim exists) has every commit refused, atomically."""
    settings = make_settings(services, topic_name, redis_prefix)

    async def scenario() -> None:
        client = async_client(settings.redis_url)
        store = RedisStateStore(client, keyspace(settings))
        old = await store.claim(0)
        await store.claim(0)  # a new owner after a rebalance
        with pytest.raises(Fenced):
            await store.commit(old, 10, None, [CustomerWrite("zed", {"orders": "99"})])
        assert await store.load(0, ["zed"]) == {}
        await client.aclose()

    asyncio.run(scenario())


def test_malformed_events_go_to_the_dead_letter_topic_and_the_stream_goes_on(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1)
    good = [purchase("g1", "gina", T0), purchase("g2", "gina", T0 + timedelta(days=2))]
    bad_json = b"{not json"
    naive = orjson.dumps(
        {
            "event_id": "x1",
            "type": "web_visit",
            "customer_id": "gina",
            "occurred_at": "2026-01-05T10:00:00",
            "schema_version": 1,
        }
    )
    unknown_currency = ev(
        "x2",
        "purchase",
        "gina",
        T0 + timedelta(days=1),
        order_id="o",
        amount="5",
        currency="XTS",
        channel="web",
    )
    lines = [good[0], bad_json, naive, unknown_currency, good[1]]

    async def scenario() -> list[Any]:
        await produce(settings, lines, lambda line: b"gina")
        await run_worker_until(settings, _all_applied(settings, len(lines)))
        return await read_topic(settings, settings.dlq_topic, 2)

    dead = asyncio.run(scenario())
    by_offset = {int(dict(r.headers)["__connect.errors.offset"]): r for r in dead}
    assert set(by_offset) >= {1, 2}
    for offset, record in by_offset.items():
        headers = dict(record.headers)
        assert record.value == lines[offset]
        assert headers["__connect.errors.topic"] == settings.events_topic.encode()
        assert headers["__connect.errors.partition"] == b"0"
        assert headers["__connect.errors.exception.message"]
    assert dict(by_offset[1].headers)["__connect.errors.exception.class.name"].endswith(b"InvalidEvent")
    assert b"occurred_at" in dict(by_offset[2].headers)["__connect.errors.exception.message"]
    want, _ = expected(good, Definitions.default())
    assert public(stored_customers(settings)["gina"]) == state_to_mapping(want["gina"])
