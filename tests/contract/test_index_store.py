"""Index and history writes: the in-memory store and the Redis commit script agree, atomically with state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from segmentation.transition import Transition
from streams.store.connection import async_client
from streams.store.history_format import FIELD, decode, entry_of
from streams.store.indexes import IndexDelta
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite, Fenced, IndexSnapshot, StateStore, WriteBatch
from streams.store.redis_store import RedisStateStore
from streams.store.writes import index_write
from tests.contract.raw_commit import raw_commit
from tests.contract.test_state_store import StoreFactory, _with_store, make_store, run
from tests.services import Services

__all__ = ["make_store"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def tr(cid: str, a: str | None, b: str | None, days: int) -> Transition:
    return Transition.create(cid, "lifecycle", a, b, T0 + timedelta(days=days), f"e{days}", "v1", {"r": "x"})


def row(seg: str, money: int, orders: int) -> dict[str, str]:
    return {"lifecycle": seg, "monetary_minor": str(money), "orders": str(orders)}


async def snapshot(store: StateStore, partition: int) -> IndexSnapshot:
    return await store.read_indexes(partition)  # type: ignore[attr-defined, no-any-return]


def write(
    index: IndexDelta, cid: str, before: dict[str, str] | None, after: dict[str, str] | None
) -> CustomerWrite:
    """The customer's write as the worker makes it: `index_write` adds the history field (to `after` too)."""
    w = CustomerWrite(cid, delete=True) if after is None else CustomerWrite(cid, dict(after))
    index_write(index, w, before, {} if after is None else after)
    return w


def test_indexes_and_history_are_committed_with_the_state(make_store: StoreFactory) -> None:
    async def body(store: StateStore) -> None:
        claim = await store.claim(0)
        d1 = IndexDelta(history_size=2)
        d1.transitions([tr("c1", None, "new", 0), tr("c2", None, "new", 0)])
        c1, c2 = row("new", 500, 1), row("new", 200, 1)
        writes = [write(d1, "c1", None, c1), write(d1, "c2", None, c2)]
        await store.commit(claim, 1, None, WriteBatch(writes, d1))
        loaded = (await store.load(0, ["c1"]))["c1"]
        assert loaded["_o"] == "0"  # the first ordinal of the partition (streams/store/membership.py)
        # the cached mapping holds the history field and the ordinal the commit gave, as stored
        assert loaded == c1 and c2["_o"] == "1"
        d2 = IndexDelta(history_size=2)
        d2.transitions([tr("c1", "new", "active", 1), tr("c1", "active", "at_risk", 2)])
        d2.transitions([tr("c2", "new", None, 3)])
        writes = [write(d2, "c1", c1, row("at_risk", 900, 2)), write(d2, "c2", c2, None)]
        await store.commit(claim, 2, None, WriteBatch(writes, d2))
        snap = await snapshot(store, 0)
        assert snap.members == {("lifecycle", "at_risk"): {"c1"}}
        assert snap.kpis["lifecycle"]["at_risk:customers"] == 1
        assert snap.kpis["lifecycle"]["at_risk:revenue_minor"] == 900
        assert "new:customers" not in snap.kpis["lifecycle"], "a counter back at 0 is deleted, not kept as 0"
        assert snap.flows["lifecycle"] == {
            "new:in:2026-01-01": 2,
            "new:out:2026-01-02": 1,
            "active:in:2026-01-02": 1,
            "active:out:2026-01-03": 1,
            "at_risk:in:2026-01-03": 1,
            "new:out:2026-01-04": 1,
        }
        stored = await store.load(0, ["c1", "c2"])
        expected = [tr("c1", "new", "active", 1), tr("c1", "active", "at_risk", 2)]  # cap 2: the first went
        assert decode(stored["c1"][FIELD]) == ([entry_of(t) for t in expected], True)
        assert [e.transition_id("c1") for e in decode(stored["c1"][FIELD])[0]] == [t.id for t in expected]
        assert set(stored) == {"c1"}  # the erased customer's hash, and its history with it, is gone

    run(_with_store(make_store, body))


def test_a_history_over_its_cap_in_one_batch_is_marked_trimmed(make_store: StoreFactory) -> None:
    """As if the entries came batch by batch: the result must not depend on how the log was batched (a replay
    flushes more per batch than a worker). Found by the chaos suite (`hostile_inputs`, seed 5)."""

    async def body(store: StateStore) -> None:
        claim = await store.claim(2)
        d = IndexDelta(history_size=2)
        moves = [tr("c1", None, "new", 0), tr("c1", "new", "active", 1), tr("c1", "active", "at_risk", 2)]
        d.transitions(moves)
        await store.commit(claim, 1, None, WriteBatch([write(d, "c1", None, row("at_risk", 500, 1))], d))
        stored = (await store.load(2, ["c1"]))["c1"]
        assert decode(stored[FIELD]) == ([entry_of(t) for t in moves[1:]], True)

    run(_with_store(make_store, body))


def test_a_fenced_commit_writes_no_index(make_store: StoreFactory) -> None:
    async def body(store: StateStore) -> None:
        old = await store.claim(1)
        await store.claim(1)
        d = IndexDelta()
        d.transitions([tr("c1", None, "new", 0)])
        d.customer("c1", None, row("new", 1, 1))
        with pytest.raises(Fenced):
            await store.commit(old, 1, None, WriteBatch([CustomerWrite("c1", row("new", 1, 1))], d))
        assert await snapshot(store, 1) == IndexSnapshot()

    run(_with_store(make_store, body))


@pytest.mark.integration
def test_the_script_validates_every_op_before_the_first_write(services: Services, redis_prefix: str) -> None:
    async def body() -> None:
        async with raw_commit(services.redis_url, redis_prefix) as raw:
            client, keys, store, claim, script = raw.client, raw.keys, raw.store, raw.claim, raw.script
            base = [keys.partition_meta(0), keys.due(0), keys.customer(0, "c1"), keys.kpis(0, "g")]
            base.append(keys.due_chunk(0, "_"))  # declared last, like every chunk (commit.lua)
            head: list[str | int] = [f"{claim.fence}:1", 5, "", 1, "c1", "S", "", 1, 0, "a", "1"]
            bad_ops: tuple[list[str | int], ...] = (
                ["SADD", 4, 1, "c1", "HINCRBY", 4, 2, "f", "not-a-number"],
                ["SADD", 4, 1, "c1", "HINCRBY", 9, 2, "f", "1"],
                ["SADD", 4, 1, "c1", "EVAL", 4, 1, "x"],
                ["SADD", 4, 5, "c1"],
                ["LPUSHCAP", 4, 3, 0, 3, "e"],  # retired with the h: lists (format 2)
                ["HSET", 1, 2, "fence", "99"],  # the meta hash takes the sweep mark only (sweep_mark.py)
                ["HSET", 1, 4, "sweeping", "5", "owner", "x"],
                ["HSET", 1, 2, "sweeping", "not-a-time"],
            )
            for ops in bad_ops:
                with pytest.raises(aioredis.ResponseError, match="BADOP"):
                    await script(keys=base, args=head + ops)
            too_big: list[str | int] = [
                "HINCRBY",
                4,
                2,
                "f",
                "99999999999999999999",
            ]  # beyond int64: HINCRBY would fail
            with pytest.raises(aioredis.ResponseError, match="OVERFLOW"):
                await script(keys=base, args=head + too_big)
            assert await client.exists(keys.customer(0, "c1"), keys.kpis(0, "g")) == 0
            assert await store.read_meta(0) == (None, None)

    run(body())


def test_a_commit_retried_after_an_ambiguous_timeout_is_applied_once(
    services: Services, redis_prefix: str
) -> None:
    """The client saw a timeout but the script ran: the retry (same sequence) must not count again."""

    async def body() -> None:
        client = async_client(services.redis_url)
        store = RedisStateStore(client, KeySpace(redis_prefix.rstrip(":"), "ns", "events"))
        claim = await store.claim(0)
        delta = IndexDelta(history_size=8)
        delta.transitions([tr("c1", None, "new", 0)])
        batch = WriteBatch([write(delta, "c1", None, row("new", 500, 1))], delta)
        await store.commit(claim, None, None, batch)  # a sweep commit: no offset to guard it
        store._next_seq[0] -= 1  # as if the reply had been lost: the caller retries the same commit
        await store.commit(claim, None, None, batch)
        snap = await store.read_indexes(0)
        assert snap.kpis["lifecycle"]["new:customers"] == 1
        assert snap.kpis["lifecycle"]["new:revenue_minor"] == 500
        history = (await store.load(0, ["c1"]))["c1"][FIELD]
        assert decode(history) == ([entry_of(tr("c1", None, "new", 0))], False)
        await store.commit(claim, None, None, WriteBatch([CustomerWrite("c2", row("new", 1, 1))], None))
        assert set(await store.load(0, ["c1", "c2"])) == {"c1", "c2"}  # the sequence moved on
        await client.aclose()

    run(body())


def test_kpi_counters_and_crossings_are_committed_with_the_state(make_store: StoreFactory) -> None:
    """`d:<grid>` and `x:<a>|<b>` are HINCRBY ops of the same commit: both stores hold the same sums, a
    counter back at 0 is deleted, and the customer's KPI marker is written with the rest of its hash."""

    def crossed(seg: str, tier: str, money: int, orders: int) -> dict[str, str]:
        return {**row(seg, money, orders), "value": tier}

    async def body(store: StateStore) -> None:
        claim = await store.claim(3)
        d1 = IndexDelta(crosstabs=(("lifecycle", "value"),))
        d1.customer("c1", None, crossed("new", "low", 500, 1))
        d1.daily[(("orders", "revenue"), "2026-01-01", ("lifecycle", "new"))] = [1, 500]
        write = CustomerWrite("c1", {**crossed("new", "low", 500, 1), "_kpi": '["2026-01",[],1,[]]'})
        await store.commit(claim, 1, None, WriteBatch([write], d1))
        d2 = IndexDelta(crosstabs=(("lifecycle", "value"),))
        d2.customer("c1", crossed("new", "low", 500, 1), crossed("new", "medium", 15000, 2), ["value"])
        d2.daily[(("orders",), "2026-01-01", ("lifecycle", "new"))] = [-1]  # back at 0: deleted
        d2.daily[(("churned",), "2026-01-02", ("value", "medium"))] = [1]
        await store.commit(
            claim, 2, None, WriteBatch([CustomerWrite("c1", crossed("new", "medium", 15000, 2))], d2)
        )
        snap = await snapshot(store, 3)
        assert snap.daily == {
            "lifecycle": {"new:revenue:2026-01-01": 500},
            "value": {"medium:churned:2026-01-02": 1},
        }
        assert snap.cross == {
            "lifecycle|value": {
                "new|medium:customers": 1,
                "new|medium:revenue_minor": 15000,
                "new|medium:orders": 2,
            }
        }
        assert (await store.load(3, ["c1"]))["c1"]["_kpi"] == '["2026-01",[],1,[]]'

    run(_with_store(make_store, body))


@pytest.mark.integration
def test_counters_stay_exact_past_2_53_and_a_counter_back_at_0_is_deleted(
    services: Services, redis_prefix: str
) -> None:
    """The script writes a counter's known result with HSET while doubles hold it exactly (below 2^53) and
    leaves the rest to HINCRBY: every value is the exact integer sum either way, a field named twice ends at
    its sum, a zero result deletes the field."""

    async def body() -> None:
        async with raw_commit(services.redis_url, redis_prefix) as raw:
            client, keys, claim, script = raw.client, raw.keys, raw.claim, raw.script
            kpis = keys.kpis(0, "g")
            near = 2**53 - 1  # one below: adding 3 crosses 2^53, where a double would round
            await client.hset(kpis, mapping={"big": str(near), "gone": "7", "small": "10", "neg": str(-near)})
            base = [keys.partition_meta(0), keys.due(0), keys.customer(0, "c1"), kpis, keys.due_chunk(0, "_")]
            head: list[str | int] = [f"{claim.fence}:1", 5, "", 1, "c1", "S", "", 1, 0, "a", "1"]
            ops: list[str | int] = ["HINCRBY", 4, 10, "big", 3, "gone", -7, "small", 5, "new", 4, "small", -1]
            ops += ["HINCRBY", 4, 4, "neg", -2, "big", 1]
            await script(keys=base, args=head + ops)
            assert await client.hgetall(kpis) == {
                b"big": str(near + 4).encode(),  # 9007199254740995: not a double
                b"small": b"14",
                b"new": b"4",
                b"neg": str(-near - 2).encode(),
            }

    run(body())


@pytest.mark.integration
def test_ops_and_writes_past_luas_unpack_limit_land_whole(services: Services, redis_prefix: str) -> None:
    """Lua's unpack() fails past ~8,000 values ("too many results to unpack"): a year of day retention periods
    of a 10-segment grid is ~11,000 counter fields in one key, so the script hands them over in slices."""

    async def body() -> None:
        async with raw_commit(services.redis_url, redis_prefix) as raw:
            client, keys, store, claim, script = raw.client, raw.keys, raw.store, raw.claim, raw.script
            customer, kpis, weeks = keys.customer(0, "c1"), keys.kpis(0, "g"), keys.weeks(0)
            n = 10_000
            await client.hset(kpis, mapping={f"f{i}": "1" for i in range(0, n, 2)})  # half exist already
            pairs = [x for i in range(n) for x in (f"a{i}", str(i))]
            head: list[str | int] = [f"{claim.fence}:1", 5, "", 1, "c1", "S", "", n, 0, *pairs]
            ops: list[str | int] = ["HINCRBY", 4, 2 * n, *(x for i in range(n) for x in (f"f{i}", 2))]
            ops += ["SADD", 5, n, *(f"w{i}" for i in range(n))]
            declared = [keys.partition_meta(0), keys.due(0), customer, kpis, weeks, keys.due_chunk(0, "_")]
            await script(keys=declared, args=head + ops)
            assert await client.hlen(customer) == n
            assert await client.hget(customer, f"a{n - 1}") == str(n - 1).encode()
            counters = await client.hgetall(kpis)
            assert counters == {f"f{i}".encode(): (b"3" if i % 2 == 0 else b"2") for i in range(n)}
            assert await client.scard(weeks) == n
            assert await store.read_meta(0) == (5, None)

    run(body())
