"""The commit script called directly, beside a store that holds partition 0's claim: for tests of what the
script itself accepts, refuses and writes (arguments no client of ours would send)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.port import Claim
from streams.store.redis_store import RedisStateStore

__all__ = ["RawCommit", "raw_commit"]


@dataclass
class RawCommit:
    client: aioredis.Redis
    keys: KeySpace
    store: RedisStateStore
    claim: Claim  # partition 0's
    script: AsyncScript  # streams/store/commit.lua, registered


@asynccontextmanager
async def raw_commit(redis_url: str, redis_prefix: str) -> AsyncIterator[RawCommit]:
    client = async_client(redis_url)
    keys = KeySpace(redis_prefix.rstrip(":"), "ns", "events")
    store = RedisStateStore(client, keys)
    try:
        claim = await store.claim(0)
        script = client.register_script(resources.files("streams.store").joinpath("commit.lua").read_text())
        yield RawCommit(client, keys, store, claim, script)
    finally:
        await client.aclose()
