"""A namespace drop on a Redis Cluster walks every primary again until a walk finds nothing: a key whose slot
moved from a primary not scanned yet to one already scanned is removed by the next walk, not left behind.
The move is forced, not waited for: the first walk is made to miss one key, as a migration would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from streams.store import namespaces
from streams.store.connection import async_client
from tests.services import Services, wants_cluster

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not wants_cluster(), reason="walks of a Redis Cluster: SEGSTREAM_TEST_REDIS=cluster"),
]


def test_a_key_missed_by_the_first_walk_is_dropped_by_the_next(
    services: Services, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = redis_prefix.rstrip(":")
    keys = [f"{prefix}:old:{{events:{p}}}:c:c{p}" for p in range(12)]  # slots on every primary
    walk = namespaces.namespace_keys
    walks: list[int] = []

    async def missing_one_at_first(client: object, pfx: str, name: str) -> AsyncIterator[str]:
        walks.append(1)
        async for key in walk(client, pfx, name):  # type: ignore[arg-type]
            if len(walks) == 1 and key == keys[5]:
                continue  # moved behind the walk
            yield key

    monkeypatch.setattr(namespaces, "namespace_keys", missing_one_at_first)

    async def body() -> tuple[int, int]:
        client = async_client(services.redis_url)
        try:
            await client.set(namespaces.pointer_key(prefix), "main")
            for key in keys:
                await client.set(key, "x")
            removed = await namespaces.drop(client, prefix, "old")
            return removed, sum([await client.exists(key) for key in keys])
        finally:
            await client.aclose()

    assert asyncio.run(body()) == (12, 0)
    assert len(walks) == 3, "two walks that found keys, the last one none"
