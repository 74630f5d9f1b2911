"""A mark written by the release before this one (meta field `swept`, never cleared once its sweep committed)
is not read: read as "a publication no commit followed", it made the first claim of a rolling update to
adopted definitions walk the whole partition at once, holding the poll loop (review of 7 December 2026).
This release's mark is `sweeping`, cleared by the commit of the moves it marked."""

from __future__ import annotations

import asyncio

from streams.store.connection import async_client
from streams.store.indexes import CLEARED, IndexDelta
from streams.store.keys import KeySpace
from streams.store.port import WriteBatch
from streams.store.redis_store import RedisStateStore
from streams.store.replies import texts
from tests.services import Services


def test_the_mark_of_the_release_before_is_not_read(services: Services, redis_prefix: str) -> None:
    async def scenario() -> tuple[int | None, int | None, int | None, dict[str, str]]:
        client = async_client(services.redis_url)
        keys = KeySpace(redis_prefix.rstrip(":"), "ns", "events")
        store = RedisStateStore(client, keys)
        try:
            claim = await store.claim(0)
            await client.hset(keys.partition_meta(0), "swept", "1780142400200000")  # as fa87905 left it
            old = (await store.claim(0)).swept_us
            claim = await store.claim(0)
            await store.commit(claim, None, None, WriteBatch([], IndexDelta(swept_us=7_000)))
            marked = (await store.claim(0)).swept_us
            claim = await store.claim(0)
            await store.commit(claim, None, None, WriteBatch([], IndexDelta(swept_us=CLEARED)))
            cleared = (await store.claim(0)).swept_us
            meta = await client.hgetall(keys.partition_meta(0))
            return old, marked, cleared, texts(meta)
        finally:
            await client.aclose()

    old, marked, cleared, meta = asyncio.run(scenario())
    assert (old, marked, cleared) == (None, 7_000, None)
    assert meta["sweeping"] == str(CLEARED) and meta["swept"] == "1780142400200000"
