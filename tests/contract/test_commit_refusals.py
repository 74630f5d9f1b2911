"""The commit script writes all of a batch or nothing: whatever Redis would refuse half way (a key of another
type, a counter that is not an integer or would overflow) is refused before the first write (issue 11)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from segmentation.transition import Transition
from streams.store.connection import async_client
from streams.store.indexes import IndexDelta
from streams.store.keys import KeySpace
from streams.store.port import CommitRefused, CustomerWrite, WriteBatch
from streams.store.redis_store import RedisStateStore
from streams.store.weeks import stored_field
from tests.contract.test_state_store import run
from tests.services import Services

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)
W0 = int(T0.timestamp() * 1_000_000)
NEAR_MAX = "9223372036854775000"  # int64 max is 9223372036854775807


def tr(cid: str, a: str | None, b: str | None, days: int) -> Transition:
    return Transition.create(cid, "lifecycle", a, b, T0 + timedelta(days=days), f"e{days}", "v1", {"r": "x"})


def row(seg: str, money: int, orders: int) -> dict[str, str]:
    return {"lifecycle": seg, "monetary_minor": str(money), "orders": str(orders)}


def first_batch() -> WriteBatch:
    d = IndexDelta()
    d.transitions([tr("c1", None, "new", 0), tr("c3", None, "new", 0)])
    d.began("c1")
    d.began("c3")
    d.customer("c1", None, row("new", 500, 1))
    d.customer("c3", None, row("new", 100, 1))
    writes = [CustomerWrite("c1", row("new", 500, 1), due_us=W0), CustomerWrite("c3", row("new", 100, 1))]
    return WriteBatch(writes, d)


def second_batch() -> WriteBatch:
    """Every op the script knows: HSET/HDEL and DEL of customers (the history is one of their fields),
    ZADD/ZREM of due times, membership bits (an ordinal allocated, bits cleared and set, an erased customer's
    map entry removed), HINCRBY of KPIs and day moves."""
    d = IndexDelta()
    d.transitions([tr("c1", "new", "active", 1), tr("c2", None, "new", 1), tr("c3", "new", None, 1)])
    d.began("c2")
    d.customer("c1", row("new", 500, 1), row("active", 900, 2), ["lifecycle"])
    d.customer("c2", None, row("new", 300, 1))
    d.erased("c3")
    d.customer("c3", row("new", 100, 1), {})
    writes = [
        CustomerWrite("c1", row("active", 900, 2), due_us=W0 + 1),
        CustomerWrite("c2", row("new", 300, 1), due_us=W0 + 2),
        CustomerWrite("c3", delete=True),
    ]
    return WriteBatch(writes, d)


Poison = Callable[[aioredis.Redis, KeySpace], Awaitable[object]]


def _replace(key: Callable[[KeySpace], str], kind: str) -> Poison:
    """Make `key` hold a value of another type (`kind`) than the commit writes there."""

    async def poison(r: aioredis.Redis, ks: KeySpace) -> None:
        k = key(ks)
        await r.delete(k)
        if kind == "string":
            await r.set(k, "x")
        elif kind == "list":
            await r.rpush(k, "x")
        elif kind == "set":
            await r.sadd(k, "x")
        elif kind == "zset":
            await r.zadd(k, {"x": 1})
        else:
            await r.hset(k, "x", "1")

    return poison


def _field(key: Callable[[KeySpace], str], name: str, value: str) -> Poison:
    """Give one field of a hash the commit moves a value HINCRBY (or the offset check) cannot take."""
    return lambda r, ks: r.hset(key(ks), name, value)


def _kpis(ks: KeySpace) -> str:
    return ks.kpis(0, "lifecycle")


CASES: dict[str, tuple[Poison, str]] = {
    "kpi counter would overflow": (_field(_kpis, "active:revenue_minor", NEAR_MAX), "OVERFLOW"),
    "kpi counter would underflow": (_field(_kpis, "new:revenue_minor", "-" + NEAR_MAX), "OVERFLOW"),
    "kpi counter is not an integer": (_field(_kpis, "active:orders", "1.5"), "NOTINT"),
    "move counter is not an integer": (
        _field(lambda ks: ks.moves(0, "lifecycle", "2026-W01"), stored_field("->new", "5"), "abc"),  # 01-02
        "NOTINT",
    ),
    "meta watermark is not an integer": (_field(lambda ks: ks.partition_meta(0), "watermark", "x"), "NOTINT"),
    "customer hash is a string": (_replace(lambda ks: ks.customer(0, "c2"), "string"), "WRONGTYPE"),
    "updated customer is a set": (
        _replace(lambda ks: ks.customer(0, "c1"), "set"),
        "WRONGTYPE",
    ),
    "due index is a hash": (_replace(lambda ks: ks.due(0), "hash"), "WRONGTYPE"),
    "entered membership bitmap is a set (an older format)": (
        _replace(lambda ks: ks.members(0, "lifecycle", "active"), "set"),
        "WRONGTYPE",
    ),
    "left membership bitmap is a zset": (
        _replace(lambda ks: ks.members(0, "lifecycle", "new"), "zset"),
        "WRONGTYPE",
    ),
    "ordinal map chunk is a list": (_replace(lambda ks: ks.ordinals(0, 0), "list"), "WRONGTYPE"),
    "a customer's ordinal is not an integer": (_field(lambda ks: ks.customer(0, "c1"), "_o", "x"), "NOTINT"),
    "meta ordinal counter is not an integer": (
        _field(lambda ks: ks.partition_meta(0), "ordinals", "1e3"),
        "NOTINT",
    ),
    "kpi hash is a list": (_replace(_kpis, "list"), "WRONGTYPE"),
    "move hash is a set": (_replace(lambda ks: ks.moves(0, "lifecycle", "2026-W01"), "set"), "WRONGTYPE"),
}


async def _everything(r: aioredis.Redis, ks: KeySpace) -> dict[bytes, bytes | None]:
    """Every key of the namespace with its serialized value (DUMP: any type, exact)."""
    match = f"{ks.prefix}:{ks.namespace}:*"
    return {key: await r.dump(key) for key in sorted([k async for k in r.scan_iter(match=match)])}


@pytest.mark.parametrize("case", list(CASES))
def test_each_op_that_redis_would_fail_half_way_is_refused_before_any_write(
    case: str, services: Services, redis_prefix: str
) -> None:
    poison, code = CASES[case]

    async def body() -> None:
        r = async_client(services.redis_url)
        ks = KeySpace(redis_prefix.rstrip(":"), "ns", "events")
        try:
            store = RedisStateStore(r, ks)
            claim = await store.claim(0)
            await store.commit(claim, 1, W0, first_batch())
            await poison(r, ks)
            before = await _everything(r, ks)
            with pytest.raises(CommitRefused, match=code):
                await store.commit(claim, 2, W0 + 5, second_batch())
            assert await _everything(r, ks) == before  # customers, indexes, due, meta offset/seq/watermark
        finally:
            await r.aclose()

    run(body())


def test_the_same_batch_commits_when_nothing_is_poisoned(services: Services, redis_prefix: str) -> None:
    """The control: unpoisoned, the batch of the test above writes (so "unchanged" there means refused)."""

    async def body() -> None:
        r = async_client(services.redis_url)
        ks = KeySpace(redis_prefix.rstrip(":"), "ns", "events")
        try:
            store = RedisStateStore(r, ks)
            claim = await store.claim(0)
            await store.commit(claim, 1, W0, first_batch())
            await store.commit(claim, 2, W0 + 5, second_batch())
            loaded = await store.load(0, ["c1", "c2", "c3"])
            assert {cid: row["_o"] for cid, row in loaded.items()} == {"c1": "0", "c2": "2"}
            assert await store.read_meta(0) == (2, W0 + 5)
            snap = await store.read_indexes(0)
            assert snap.kpis["lifecycle"] == {
                "active:customers": 1, "active:revenue_minor": 900, "active:orders": 2,
                "new:customers": 1, "new:revenue_minor": 300, "new:orders": 1,
            }  # fmt: skip
            assert snap.members == {("lifecycle", "active"): {"c1"}, ("lifecycle", "new"): {"c2"}}
            assert await r.hgetall(ks.ordinals(0, 0)) == {b"0": b"c1", b"2": b"c2"}  # c3's entry erased
        finally:
            await r.aclose()

    run(body())


def test_a_counter_at_the_edge_of_int64_still_moves_when_it_stays_inside(
    services: Services, redis_prefix: str
) -> None:
    """Conservative, not absurd: a large counter that stays well inside the range is committed."""

    async def body() -> None:
        r = async_client(services.redis_url)
        ks = KeySpace(redis_prefix.rstrip(":"), "ns", "events")
        try:
            store = RedisStateStore(r, ks)
            claim = await store.claim(0)
            await store.commit(claim, 1, W0, first_batch())
            await r.hset(ks.kpis(0, "lifecycle"), "active:revenue_minor", "9100000000000000000")
            await store.commit(claim, 2, W0 + 5, second_batch())
            assert await r.hget(ks.kpis(0, "lifecycle"), "active:revenue_minor") == b"9100000000000000900"
        finally:
            await r.aclose()

    run(body())
