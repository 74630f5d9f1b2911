"""A claim request that reaches Redis after the claim sent again in its place changes nothing.

The interleaving is forced at the connection: the first request that claims the partition is kept instead
of sent and the connection fails as if its reply were lost; the claim is sent again and succeeds; then the
kept request is delivered to Redis, late. Before `fence.take` it incremented the fence once more and fenced
the successful claim out of its own partition (its commits refused until a restart)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError

from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.redis_store import RedisStateStore
from streams.worker.retry import retry
from tests.services import Services


def is_claim(data: bytes, meta: bytes) -> bool:
    """A request that moves the partition's fence: a script call or transaction on its meta hash (the
    commit's script call also names it, but comes only after a claim)."""
    return meta in data and (b"EVALSHA" in data or b"HINCRBY" in data)


async def deliver(client: Any, data: bytes) -> list[Any]:
    """Send raw request bytes on a fresh connection and read every reply up to a PING's."""
    conn = await client.connection_pool.get_connection()
    replies: list[Any] = []
    try:
        await conn.send_packed_command(data)
        await conn.send_command("PING")
        while (reply := await conn.read_response()) not in (b"PONG", "PONG", True):
            replies.append(reply)
    finally:
        await client.connection_pool.release(conn)
    return replies


@pytest.mark.parametrize("then", ["nothing", "another claim"])
def test_a_late_copy_of_a_claim_does_not_fence_out_the_claim_that_succeeded(
    services: Services, redis_prefix: str, monkeypatch: pytest.MonkeyPatch, then: str
) -> None:
    """`then`: whether another process claims the partition before the late copy arrives (a rebalance):
    that newer owner must keep it as well."""
    ks = KeySpace(redis_prefix.rstrip(":"), "ns", "events")
    meta = ks.partition_meta(0).encode()

    async def body() -> None:
        client, other = async_client(services.redis_url), async_client(services.redis_url)
        store = RedisStateStore(client, ks)
        kept: list[bytes] = []
        send = AbstractConnection.send_packed_command

        async def losing(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
            data = command if isinstance(command, bytes) else b"".join(command)
            if not kept and is_claim(data, meta):
                kept.append(data)
                raise RedisConnectionError("connection lost before the claim's reply")
            await send(self, command, check_health)

        retried: list[str] = []
        try:
            monkeypatch.setattr(AbstractConnection, "send_packed_command", losing)
            claim = await retry(lambda: store.claim(0), "claim partition", retried.append, 0.05)
            monkeypatch.undo()
            assert kept, "the first claim request was held back"
            await store.commit(claim, 4, None, [])
            if then == "another claim":
                store = RedisStateStore(other, ks)  # another process, the partition's newer owner
                claim = await store.claim(0)
            fence_before = await client.hget(ks.partition_meta(0), "fence")
            await deliver(client, kept[0])  # the lost request arrives now
            assert await client.hget(ks.partition_meta(0), "fence") == fence_before, "the late copy moved it"
            await store.commit(claim, 9, None, [])  # refused as Fenced before the fix
            assert await client.hget(ks.partition_meta(0), "offset") == b"9"
        finally:
            await client.aclose()
            await other.aclose()

    asyncio.run(body())


def test_a_claim_with_an_outdated_fence_claims_over_the_current_one(
    services: Services, redis_prefix: str
) -> None:
    """A store's last known fence is only a first guess: another process claimed since, and the claim still
    succeeds, on top of the newer fence, fencing that process out."""
    ks = KeySpace(redis_prefix.rstrip(":"), "ns", "events")

    async def body() -> tuple[int, int, int]:
        client = async_client(services.redis_url)
        try:
            mine, theirs = RedisStateStore(client, ks), RedisStateStore(client, ks)
            first = await mine.claim(1)
            newer = await theirs.claim(1)
            again = await mine.claim(1)
            return first.fence, newer.fence, again.fence
        finally:
            await client.aclose()

    assert asyncio.run(body()) == (1, 2, 3)
