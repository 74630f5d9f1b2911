"""Membership as bitmaps over customer ordinals (streams/store/membership.py): both stores allocate the same
ordinals, clear and set the same bits and keep the same ordinal -> id map; the reader and the export page
through it exactly, across map chunks and holes."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from streams.read.columns import catalogue, parse_columns
from streams.read.export import Selection, member_rows
from streams.read.reader import SegmentReader
from streams.settings import Settings
from streams.store import membership
from streams.store.connection import async_client
from streams.store.indexes import IndexDelta
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite, StateStore, WriteBatch
from streams.store.redis_store import RedisStateStore
from tests.contract.raw_commit import raw_commit
from tests.contract.test_state_store import StoreFactory, _with_store, make_store, run
from tests.services import Services

__all__ = ["make_store"]


def row(seg: str, rfm: str = "x") -> dict[str, str]:
    return {"lifecycle": seg, "rfm": rfm, "monetary_minor": "0", "orders": "0"}


class Batch:
    """One commit's writes and index delta, built the way the worker builds them."""

    def __init__(self) -> None:
        self.delta = IndexDelta()
        self.writes: list[CustomerWrite] = []

    def began(self, *ids: str) -> Batch:
        for cid in ids:
            self.delta.began(cid)
        return self

    def write(self, cid: str, before: dict[str, str] | None, after: dict[str, str] | None) -> Batch:
        if after is None:
            self.delta.erased(cid)
            self.delta.customer(cid, before, {})
            self.writes.append(CustomerWrite(cid, delete=True))
        else:
            changed = [k for k in after if (before or {}).get(k) != after[k]]
            self.delta.customer(cid, before, after, changed)
            self.writes.append(CustomerWrite(cid, after))
        return self

    def batch(self) -> WriteBatch:
        return WriteBatch(self.writes, self.delta)


async def ordinals(store: StateStore, partition: int, ids: list[str]) -> dict[str, str]:
    loaded = await store.load(partition, ids)
    return {cid: fields["_o"] for cid, fields in loaded.items()}


def test_lifetimes_take_ordinals_in_log_order_and_moves_follow(make_store: StoreFactory) -> None:
    async def body(store: StateStore) -> None:
        claim = await store.claim(0)
        # c2's creating event came first in the log, c1 is written first: the log order decides
        b = Batch().began("c2", "c1").write("c1", None, row("new")).write("c2", None, row("new", "y"))
        await store.commit(claim, 1, None, b.batch())
        assert await ordinals(store, 0, ["c1", "c2"]) == {"c1": "1", "c2": "0"}
        b = Batch().write("c1", row("new"), row("active"))
        await store.commit(claim, 2, None, b.batch())
        snap = await store.read_indexes(0)  # type: ignore[attr-defined]
        assert snap.members == {
            ("lifecycle", "active"): {"c1"},
            ("lifecycle", "new"): {"c2"},
            ("rfm", "x"): {"c1"},
            ("rfm", "y"): {"c2"},
        }
        assert await ordinals(store, 0, ["c1", "c2"]) == {"c1": "1", "c2": "0"}, "a move keeps the ordinal"

    run(_with_store(make_store, body))


def test_erasure_clears_bits_and_map_and_a_re_creation_takes_a_new_ordinal(make_store: StoreFactory) -> None:
    async def body(store: StateStore) -> None:
        claim = await store.claim(1)
        b = Batch().began("a", "b").write("a", None, row("new")).write("b", None, row("new"))
        await store.commit(claim, 1, None, b.batch())
        await store.commit(claim, 2, None, Batch().write("a", row("new"), None).batch())
        snap = await store.read_indexes(1)  # type: ignore[attr-defined]
        assert snap.members == {("lifecycle", "new"): {"b"}, ("rfm", "x"): {"b"}}
        assert await ordinals(store, 1, ["a", "b"]) == {"b": "1"}
        # re-created in a later batch: the next ordinal, never its old one
        await store.commit(claim, 3, None, Batch().began("a").write("a", None, row("active")).batch())
        assert await ordinals(store, 1, ["a", "b"]) == {"a": "2", "b": "1"}
        # erased and re-created within one batch: its hash stays, its ordinal does not
        b = Batch().began("b").write("b", row("new"), row("new", "z"))
        await store.commit(claim, 4, None, b.batch())
        assert await ordinals(store, 1, ["a", "b"]) == {"a": "2", "b": "3"}
        # created and erased within one batch: the lifetime burns an ordinal (as if batched apart)
        await store.commit(claim, 5, None, Batch().began("c").write("c", None, None).batch())
        await store.commit(claim, 6, None, Batch().began("d").write("d", None, row("new")).batch())
        assert await ordinals(store, 1, ["a", "b", "c", "d"]) == {"a": "2", "b": "3", "d": "5"}
        snap = await store.read_indexes(1)  # type: ignore[attr-defined]
        assert snap.members == {
            ("lifecycle", "active"): {"a"},
            ("lifecycle", "new"): {"b", "d"},
            ("rfm", "x"): {"a", "d"},
            ("rfm", "z"): {"b"},
        }

    run(_with_store(make_store, body))


def test_a_caller_without_lifetimes_gets_ordinals_in_op_order(make_store: StoreFactory) -> None:
    """Admin paths and tests that do not report lifetimes: a customer entering a segment without an ordinal
    takes the next one (removals first, then additions, in the delta's order)."""

    async def body(store: StateStore) -> None:
        claim = await store.claim(2)
        b = Batch().write("p", None, row("new")).write("q", None, row("active"))
        await store.commit(claim, 1, None, b.batch())
        assert await ordinals(store, 2, ["p", "q"]) == {"p": "0", "q": "1"}

    run(_with_store(make_store, body))


@pytest.mark.integration
def test_a_retried_commit_allocates_nothing_twice(services: Services, redis_prefix: str) -> None:
    async def body() -> None:
        client = async_client(services.redis_url)
        keys = KeySpace(redis_prefix.rstrip(":"), "ns", "events")
        store = RedisStateStore(client, keys)
        try:
            claim = await store.claim(0)
            batch = Batch().began("c1").write("c1", None, row("new")).batch()
            await store.commit(claim, None, None, batch)
            store._next_seq[0] -= 1  # the reply was lost: the same commit again
            await store.commit(claim, None, None, batch)
            assert await client.hget(keys.partition_meta(0), "ordinals") == b"1"
            assert await client.hgetall(keys.ordinals(0, 0)) == {b"0": b"c1"}
        finally:
            await client.aclose()

    run(body())


@pytest.mark.integration
def test_malformed_bits_entries_are_refused_before_any_write(services: Services, redis_prefix: str) -> None:
    async def body() -> None:
        async with raw_commit(services.redis_url, redis_prefix) as raw:
            client, keys, claim, script = raw.client, raw.keys, raw.claim, raw.script
            base = [keys.partition_meta(0), keys.due(0), keys.customer(0, "c1"), keys.members(0, "g", "s")]
            base.append(keys.due_chunk(0, "_"))  # declared last, like every chunk (commit.lua)
            head: list[str | int] = [f"{claim.fence}:1", 5, "", 1, "c1", "S", "", 1, 0, "a", "1"]
            bad_ops: tuple[list[str | int], ...] = (
                ["BITS", 3, 2, "A", 3],  # not on the meta key
                ["BITS", 1, 2, "X", 3],  # unknown entry
                ["BITS", 1, 3, "M", 3, 1],  # fewer bits than announced
                ["BITS", 1, 4, "M", 3, 1, "*4"],  # neither + nor -
                ["BITS", 1, 4, "M", 3, 1, "+9"],  # no such key
                ["BITS", 1, 2, "A", 3, "BITS", 1, 2, "A", 3],  # two BITS ops
            )
            for ops in bad_ops:
                with pytest.raises(aioredis.ResponseError, match="BADOP"):
                    await script(keys=base, args=head + ops)
            assert await client.exists(keys.customer(0, "c1"), keys.members(0, "g", "s")) == 0
            assert await client.hget(keys.partition_meta(0), "ordinals") is None

    run(body())


@pytest.mark.integration
def test_pages_cross_map_chunks_and_holes_exactly(services: Services, redis_prefix: str) -> None:
    """700 customers per partition (ordinals across 6 map chunks), every third erased and every fifth in
    another segment: the reader's pages and the export list exactly the members, each once, in order."""

    async def body() -> None:
        client = async_client(services.redis_url)
        prefix = redis_prefix.rstrip(":")
        keys = KeySpace(prefix, "ns", "events")
        store = RedisStateStore(client, keys)
        expected: dict[int, list[str]] = {0: [], 1: []}
        try:
            for p in (0, 1):
                claim = await store.claim(p)
                ids = [f"p{p}-{n:04d}" for n in range(700)]
                b = Batch().began(*ids)
                for n, cid in enumerate(ids):
                    b.write(cid, None, row("active" if n % 5 == 0 else "new"))
                await store.commit(claim, 1, None, b.batch())
                b = Batch()
                for n, cid in enumerate(ids):
                    if n % 3 == 0:
                        b.write(cid, row("active" if n % 5 == 0 else "new"), None)
                await store.commit(claim, 2, None, b.batch())
                expected[p] = [cid for n, cid in enumerate(ids) if n % 3 and n % 5]
            settings = Settings(
                redis_url=services.redis_url, key_prefix=prefix, namespace="ns", events_topic="events",
                topic_partitions=2,
            )  # fmt: skip
            reader = SegmentReader(async_client(services.redis_url, decode_responses=True), settings)
            listed: list[str] = []
            cursor: str | None = None
            pages = 0
            while True:
                page = await reader.members_page("lifecycle", "new", cursor, 97)
                pages += 1
                assert len(page.members) == 97 or page.next_cursor is None
                listed += page.members
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            await reader.aclose()
            assert listed == expected[0] + expected[1]
            assert pages == -(-len(listed) // 97)
            assert await reader.segment_count("lifecycle", "new") == len(listed)
            columns = parse_columns("customer_id,segment:lifecycle", catalogue(["lifecycle"]), False)
            selection = Selection("lifecycle", "new", columns)
            rows = [r async for chunk in member_rows(client, keys, [0, 1], selection, 50) for r in chunk]
            assert rows == [(cid, ["new"]) for cid in listed]
            assert await client.hlen(keys.ordinals(0, 0)) == len([n for n in range(128) if n % 3])
        finally:
            await client.aclose()

    run(body())


def test_ordinals_in_reads_bits_in_setbit_order() -> None:
    window = bytes([0b10000001, 0, 0b01000000])
    assert list(membership.ordinals_in(window, 800)) == [800, 807, 817]
    assert list(membership.ordinals_in(window, 800, 801)) == [807, 817]
    assert membership.chunk_of(300) == (2, "44")
