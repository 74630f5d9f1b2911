"""What a customer costs in Redis: the hash stays a compact listpack, and a worker warns when it cannot."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from segmentation import CustomerState, Definitions, apply, parse_event
from segmentation.state_mapping import state_to_mapping
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite
from streams.store.redis_store import RedisStateStore
from streams.store.tuning import LISTPACK_VALUE, memory_advice

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@asynccontextmanager
async def listpack_value(server: redis.Redis, value: int) -> AsyncIterator[aioredis.Redis]:
    """A client of the test's own Redis with that setting: on the shared one, tests running beside this one
    would measure or warn about a setting that is not theirs."""
    server.config_set("hash-max-listpack-value", value)
    client = async_client(f"redis://127.0.0.1:{server.connection_pool.connection_kwargs['port']}/0")
    try:
        yield client
    finally:
        await client.aclose()


def busy_customer() -> dict[str, str]:
    """A year of purchases, opens, a survey and a profile; UUID event ids fill the de-duplication window."""
    defs, state = Definitions.default(), CustomerState.new("customer-000042")
    for n in range(120):
        at = (T0 + timedelta(days=3 * n)).isoformat()
        body: dict[str, Any] = (
            {"type": "purchase", "order_id": f"o{n}", "amount": "42.50", "currency": "EUR", "channel": "web"}
            if n % 3 == 0
            else {"type": "email_open"}
        )
        if n == 50:
            body = {"type": "profile_update", "birth_year": 1984, "region": "FR", "gender": "female"}
        if n == 60:
            body = {"type": "survey_response", "score": 9}
        raw = {"event_id": str(uuid.UUID(int=n)), "customer_id": state.customer_id, "occurred_at": at,
               "schema_version": 1, **body}  # fmt: skip
        state = apply(state, parse_event(raw), defs).state
    return state_to_mapping(state)


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


def test_a_busy_customer_hash_is_a_compact_listpack(
    own_redis: Callable[..., redis.Redis], redis_prefix: str
) -> None:
    mapping = busy_customer()
    assert len(mapping["state"]) > 64  # would turn the hash into a hashtable at Redis' default

    async def body() -> None:
        async with listpack_value(own_redis(), LISTPACK_VALUE) as client:
            store = RedisStateStore(client, KeySpace(redis_prefix.rstrip(":"), "ns", "events"))
            claim = await store.claim(0)
            await store.commit(claim, 1, None, [CustomerWrite("customer-000042", mapping)])
            key = store.keys.customer(0, "customer-000042")
            assert await client.object("encoding", key) == b"listpack"
            assert (await client.memory_usage(key, samples=0) or 0) < 2300  # ~2.1 KB (format 1: ~3.7 KB)

    run(body)


def test_a_worker_warns_when_the_server_would_double_hash_memory(
    own_redis: Callable[..., redis.Redis],
) -> None:
    server = own_redis()

    async def body() -> None:
        async with listpack_value(server, 64) as client:
            advice = await memory_advice(client)
            assert advice is not None and f"hash-max-listpack-value {LISTPACK_VALUE}" in advice
        async with listpack_value(server, LISTPACK_VALUE) as client:
            assert await memory_advice(client) is None

    run(body)
