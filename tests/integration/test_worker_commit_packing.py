"""The commit script takes the batch's customer writes packed into one argument (a msgpack array: what the
worker sends) or one argument per part (the script's plain form): both must write exactly the same, and a
packed block that does not match its counts, or is no array of strs, must be refused before any write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from segmentation import CustomerState
from segmentation.state_mapping import STATE, packed_bytes, packed_text, state_from_mapping, state_to_mapping
from streams.store.commit_script import pack, unpack, write_parts
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite
from streams.store.redis_store import RedisStateStore
from streams.store.replies import texts
from tests.services import Services

pytestmark = pytest.mark.integration

WRITES = [
    CustomerWrite("c1", {"a": "1", "b": ""}, due_us=1_000),
    CustomerWrite("c2", {"a": "2"}, removed_fields=["gone"], due_us=None),
    CustomerWrite("c3", delete=True),
]


def test_parts_follow_the_script_layout() -> None:
    assert write_parts(WRITES) == [
        *("c1", "S", "1000", "2", "0", "a", "1", "b", ""),
        *("c2", "S", "", "1", "1", "a", "2", "gone"),
        *("c3", "D", "", "0", "0"),
    ]


@asynccontextmanager
async def redis_store(
    services: Services, redis_prefix: str
) -> AsyncIterator[tuple[aioredis.Redis, KeySpace, RedisStateStore]]:
    """A store on the test's own key prefix; its client is closed afterwards."""
    client = async_client(services.redis_url)
    keys = KeySpace(redis_prefix.rstrip(":"), "ns", "events")
    try:
        yield client, keys, RedisStateStore(client, keys)
    finally:
        await client.aclose()


async def _state(client: aioredis.Redis, keys: KeySpace) -> dict[str, Any]:
    return {cid: await client.hgetall(keys.customer(0, cid)) for cid in ("c1", "c2", "c3")} | {
        "due": await client.zrange(keys.due(0), 0, -1, withscores=True),
        "unordered": await client.zrange(keys.due_chunk(0, "_"), 0, -1, withscores=True),
    }


def test_packed_and_plain_commits_write_the_same(services: Services, redis_prefix: str) -> None:
    async def commit_both(plain: bool) -> tuple[dict[str, Any], list[Any]]:
        client = async_client(services.redis_url)
        keys = KeySpace(f"{redis_prefix}{'plain' if plain else 'packed'}", "ns", "events")
        store = RedisStateStore(client, keys)
        sent: list[Any] = []
        script = store._commit

        async def spy(keys: list[str], args: list[Any]) -> Any:
            if plain:  # the script's plain form: every part its own argument
                n, packed = str(args[3]).split(":")[0], args[4]
                args = [*args[:3], int(n), *unpack(packed), *args[5:]]
            sent.append(args)
            return await script(keys=keys, args=args)

        store._commit = spy  # type: ignore[assignment]
        try:
            claim = await store.claim(0)
            await client.hset(keys.customer(0, "c2"), mapping={"gone": "x", "kept": "y"})
            await client.hset(keys.customer(0, "c3"), mapping={"a": "x"})
            await client.zadd(keys.due_chunk(0, "_"), {"c2": 5, "c3": 6})  # customers without ordinal
            await client.zadd(keys.due(0), {"_": 5})
            await store.commit(claim, 7, None, WRITES)
            return await _state(client, keys), sent
        finally:
            await client.aclose()

    packed, sent_packed = asyncio.run(commit_both(plain=False))
    plain, sent_plain = asyncio.run(commit_both(plain=True))
    assert sent_packed[0][3] == f"3:{len(write_parts(WRITES))}"  # the usual case is one argument
    assert len(sent_plain[0]) > len(sent_packed[0])
    assert packed == plain
    assert packed["c1"] == {b"a": b"1", b"b": b""}
    assert packed["c2"] == {b"a": b"2", b"kept": b"y"}
    assert packed["c3"] == {}
    assert packed["unordered"] == [(b"c1", 1000.0)]
    assert packed["due"] == [(b"_", 1000.0)]  # the chunk's earliest


def test_a_packed_block_that_does_not_match_its_counts_writes_nothing(
    services: Services, redis_prefix: str
) -> None:
    async def body() -> None:
        async with redis_store(services, redis_prefix) as (client, keys, store):
            claim = await store.claim(0)
            script = client.register_script(
                resources.files("streams.store").joinpath("commit.lua").read_text()
            )
            base = [keys.partition_meta(0), keys.due(0), keys.customer(0, "c1"), keys.customer(0, "c2")]
            base.append(keys.due_chunk(0, "_"))  # declared last, like every chunk (commit.lua)
            parts = ["c1", "S", "", "1", "0", "a", "1", "c2", "S", "", "1", "0", "b", "2"]
            good = pack(parts)
            bad_blocks: tuple[tuple[str, bytes], ...] = (
                ("2:13", good),  # count one short
                ("2:15", good),  # count one too many
                ("2:14", pack([*parts[:10], "9", *parts[11:]])),  # n_set beyond the block
                ("2:14", pack([parts[0], "X", *parts[2:]])),  # unknown kind
                ("2:14", msgspec.msgpack.encode([*parts[:6], 1, *parts[7:]])),  # a number, not a str
                ("2:14", msgspec.msgpack.encode([*parts[:13], [b"2"]])),  # an array
                ("2:14", b"\x00".join(p.encode() for p in parts)),  # NUL-joined, the format before
                ("2:14", good[:-1]),  # cut short
            )
            for counts, block in bad_blocks:
                with pytest.raises(aioredis.ResponseError, match="BADARGS"):
                    await script(keys=base, args=[f"{claim.fence}:1", 5, "", counts, block])
            assert await client.exists(keys.customer(0, "c1"), keys.customer(0, "c2")) == 0
            assert await store.read_meta(0) == (None, None)
            await script(keys=base, args=[f"{claim.fence}:1", 5, "", "2:14", good])
            assert await client.hgetall(keys.customer(0, "c2")) == {b"b": b"2"}

    asyncio.run(body())


def test_due_times_follow_the_last_write_of_each_customer_and_are_checked_first(
    services: Services, redis_prefix: str
) -> None:
    """Due times go out in one ZADD and one ZREM per batch: the result must be that of writing them one by
    one, in order; a malformed due time must be refused before anything is written."""

    async def body() -> None:
        async with redis_store(services, redis_prefix) as (client, keys, store):
            claim = await store.claim(0)
            await store.commit(
                claim, 0, None, [CustomerWrite(c, {"x": "0"}, due_us=t) for c, t in (("old", 1), ("kept", 2))]
            )
            writes = [
                CustomerWrite("a", {"x": "1"}, due_us=30),
                CustomerWrite("b", {"x": "1"}, due_us=10),
                CustomerWrite("old", {"x": "1"}),  # no due time any more
                CustomerWrite("a", {"x": "2"}, due_us=20),  # written again: its last due wins
                CustomerWrite("b", delete=True),  # erased after its first write
            ]
            await store.commit(claim, 1, None, writes)
            assert await store.due(0, 10**18, 10) == ["kept", "a"]
            assert (await store.due(0, 19, 10), await store.due(0, 20, 10)) == (["kept"], ["kept", "a"])
            script = client.register_script(
                resources.files("streams.store").joinpath("commit.lua").read_text()
            )
            base = [keys.partition_meta(0), keys.due(0), keys.customer(0, "c"), keys.due_chunk(0, "_")]
            block = pack(["c", "S", "soon", "1", "0", "x", "1"])
            with pytest.raises(aioredis.ResponseError, match="BADARGS due"):
                await script(keys=base, args=[f"{claim.fence}:3", 5, "", "1:7", block])
            assert await client.exists(keys.customer(0, "c")) == 0

    asyncio.run(body())


def test_a_packed_state_rides_in_the_one_block_and_reads_back_exactly(
    services: Services, redis_prefix: str
) -> None:
    """A batch of binary `state` fields rides in the one script argument; Redis keeps its bytes exactly (the
    state decodes equal, every readable field as written)."""
    state = CustomerState(
        "c1",
        orders=3,
        gross_minor=0,
        email_open_score=-0.0,
        seg_rfm="champions",
        clock=datetime(2026, 1, 1, tzinfo=UTC),
    )
    mapping = state_to_mapping(state)

    async def body() -> None:
        async with redis_store(services, redis_prefix) as (client, keys, store):
            sent: list[Any] = []
            script = store._commit

            async def spy(keys: list[str], args: list[Any]) -> Any:
                sent.append(args)
                return await script(keys=keys, args=args)

            store._commit = spy  # type: ignore[assignment]
            claim = await store.claim(0)
            await store.commit(claim, 1, None, [CustomerWrite("c1", mapping)])
            assert len(sent[0]) == 5  # fence, offset, watermark, counts, the one block
            row = texts(await client.hgetall(keys.customer(0, "c1")))
            assert row == mapping and state_from_mapping(row) == state
            assert str(state_from_mapping(row).email_open_score) == "-0.0"

    asyncio.run(body())


def test_a_packed_state_sent_as_bytes_lands_as_the_same_bytes(services: Services, redis_prefix: str) -> None:
    """The write path sends the packed state as bytes (`CustomerWrite.binary`) in the block, also beside a
    value holding NUL or bytes carried as text (surrogateescape): the hash holds exactly the bytes
    `packed_bytes` made, as when the state is given as text."""
    state = CustomerState.new("c1")._replace(first_seen_at=datetime(2026, 1, 1, tzinfo=UTC), orders=3)
    raw = packed_bytes(state)
    assert any(b > 0x7F for b in raw)  # bytes that are no UTF-8 text, as every compressed state

    async def body() -> None:
        async with redis_store(services, redis_prefix) as (client, keys, store):
            claim = await store.claim(0)
            await store.commit(claim, 1, None, [CustomerWrite("c1", {"a": "1"}, binary={"state": raw})])
            await store.commit(claim, 2, None, [CustomerWrite("c2", {"a": "x\x00y"}, binary={"state": raw})])
            await store.commit(claim, 3, None, [CustomerWrite("c3", {"a": "1", "state": packed_text(state)})])
            await store.commit(claim, 4, None, [CustomerWrite("c4", {"a": "z\udcffz"}, binary={STATE: raw})])
            for cid, a in (("c1", b"1"), ("c2", b"x\x00y"), ("c3", b"1"), ("c4", b"z\xffz")):
                assert await client.hgetall(keys.customer(0, cid)) == {b"a": a, b"state": raw}
            loaded = texts(await client.hgetall(keys.customer(0, "c1")))
            assert state_from_mapping(loaded) == state_from_mapping(state_to_mapping(state))

    asyncio.run(body())
