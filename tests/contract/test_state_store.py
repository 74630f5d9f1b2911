"""One contract, every backend: the in-memory store and Redis behave the same (eventsourcing style)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from segmentation import CustomerState
from segmentation.instants import to_us
from streams.store.connection import async_client
from streams.store.indexes import CLEARED, IndexDelta
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite, Fenced, InMemoryStateStore, StaleOffset, StateStore, WriteBatch
from streams.store.redis_store import RedisStateStore
from streams.store.stored_state import is_tombstone, stored_state
from streams.store.writes import index_write
from tests.services import Services

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


StoreFactory = Callable[[], Coroutine[Any, Any, tuple[StateStore, Callable[[], Coroutine[Any, Any, None]]]]]


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    if request.param == "memory":

        async def memory() -> tuple[StateStore, Callable[[], Coroutine[Any, Any, None]]]:
            async def noop() -> None:
                return None

            return InMemoryStateStore(), noop

        return memory
    request.applymarker(pytest.mark.integration)
    services: Services = request.getfixturevalue("services")
    prefix: str = request.getfixturevalue("redis_prefix")

    async def real() -> tuple[StateStore, Callable[[], Coroutine[Any, Any, None]]]:
        client = async_client(services.redis_url)
        return RedisStateStore(client, KeySpace(prefix.rstrip(":"), "ns", "events")), client.aclose

    return real


async def _with_store(factory: StoreFactory, body: Callable[[StateStore], Coroutine[Any, Any, None]]) -> None:
    store, close = await factory()
    try:
        await body(store)
    finally:
        await close()


def test_claim_starts_empty_and_commit_moves_offset(make_store: StoreFactory) -> None:
    async def body(store: StateStore) -> None:
        claim = await store.claim(0)
        assert (claim.offset, claim.watermark_us) == (None, None)
        await store.commit(claim, 9, 1_000, [CustomerWrite("c1", {"a": "1", "b": "2"}, due_us=5_000)])
        assert await store.load(0, ["c1", "c2"]) == {"c1": {"a": "1", "b": "2"}}
        assert await store.read_meta(0) == (9, 1_000)
        again = await store.claim(0)
        assert (again.offset, again.watermark_us) == (9, 1_000)
        assert again.fence > claim.fence

    run(_with_store(make_store, body))


def test_partial_update_removal_and_delete(make_store: StoreFactory) -> None:
    async def body(store: StateStore) -> None:
        claim = await store.claim(1)
        await store.commit(claim, 0, None, [CustomerWrite("c1", {"a": "1", "b": "2"}, due_us=10)])
        await store.commit(claim, 1, None, [CustomerWrite("c1", {"a": "3"}, removed_fields=["b"], due_us=20)])
        assert await store.load(1, ["c1"]) == {"c1": {"a": "3"}}
        assert await store.due(1, 19, 10) == []
        assert await store.due(1, 20, 10) == ["c1"]
        await store.commit(claim, 2, None, [CustomerWrite("c1", delete=True)])
        assert await store.load(1, ["c1"]) == {}
        assert await store.due(1, 10**18, 10) == []

    run(_with_store(make_store, body))


def test_a_fenced_owner_writes_nothing(make_store: StoreFactory) -> None:
    async def body(store: StateStore) -> None:
        old = await store.claim(2)
        new = await store.claim(2)
        with pytest.raises(Fenced):
            await store.commit(old, 5, 100, [CustomerWrite("c1", {"a": "1"})])
        assert await store.load(2, ["c1"]) == {}
        assert await store.read_meta(2) == (None, None)
        await store.commit(new, 5, 100, [CustomerWrite("c1", {"a": "2"})])
        assert await store.load(2, ["c1"]) == {"c1": {"a": "2"}}

    run(_with_store(make_store, body))


def test_a_load_with_our_claim_says_when_someone_else_wrote_since(make_store: StoreFactory) -> None:
    """What a worker checks before applying a batch to the states it holds (see `standing`)."""

    async def body(store: StateStore) -> None:
        old = await store.claim(4)
        await store.commit(old, 1, 10, [CustomerWrite("c1", {"a": "1"})])
        assert await store.load(4, ["c1"], old) == {"c1": {"a": "1"}}
        assert await store.load(4, [], old) == {}  # the check alone, when every state is held
        new = await store.claim(4)
        with pytest.raises(Fenced):
            await store.load(4, ["c1"], old)
        await store.commit(new, 2, 20, [CustomerWrite("c1", {"a": "2"})])
        assert await store.load(4, ["c1"], new) == {"c1": {"a": "2"}}

    run(_with_store(make_store, body))


def test_an_offset_that_does_not_advance_is_refused_whole(make_store: StoreFactory) -> None:
    async def body(store: StateStore) -> None:
        claim = await store.claim(3)
        await store.commit(claim, 7, 50, [CustomerWrite("c1", {"n": "1"})])
        with pytest.raises(StaleOffset):
            await store.commit(claim, 7, 60, [CustomerWrite("c1", {"n": "2"})])
        assert await store.load(3, ["c1"]) == {"c1": {"n": "1"}}
        assert await store.read_meta(3) == (7, 50)
        # A commit without offset (a time sweep) is allowed and never moves the watermark back.
        await store.commit(claim, None, 40, [CustomerWrite("c1", {"n": "3"})])
        assert await store.read_meta(3) == (7, 50)

    run(_with_store(make_store, body))


def test_due_is_ordered_by_time_and_limited(make_store: StoreFactory) -> None:
    async def body(store: StateStore) -> None:
        claim = await store.claim(0)
        writes = [CustomerWrite(f"c{i}", {"x": "1"}, due_us=100 - i) for i in range(5)]
        await store.commit(claim, 1, None, writes)
        assert await store.due(0, 98, 10) == ["c4", "c3", "c2"]
        assert await store.due(0, 1000, 2) == ["c4", "c3"]

    run(_with_store(make_store, body))


def test_values_with_separator_characters_round_trip(make_store: StoreFactory) -> None:
    """The Redis commit packs fields with NUL separators; a value containing one must still be exact."""

    async def body(store: StateStore) -> None:
        claim = await store.claim(0)
        odd = {"plain": "x", "nul": "a\x00b", "empty": "", "unit": "\x1f", "long": "é" * 300}
        await store.commit(claim, 1, None, [CustomerWrite("c1", odd), CustomerWrite("c2", {"a": "1"})])
        assert await store.load(0, ["c1", "c2"]) == {"c1": odd, "c2": {"a": "1"}}
        await store.commit(claim, 2, None, [CustomerWrite("c1", {"nul": "c\x00"}, removed_fields=["empty"])])
        assert (await store.load(0, ["c1"]))["c1"] == {
            "plain": "x",
            "nul": "c\x00",
            "unit": "\x1f",
            "long": "é" * 300,
        }

    run(_with_store(make_store, body))


def test_an_erasure_leaves_a_tombstone_that_load_reads_back(make_store: StoreFactory) -> None:
    """The erased customer's hash is gone, its erasure time is not: `load` answers the blank state erased
    then (so its older events stay out), and a later lifetime's hash wins over it."""
    erased_at = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def erasing(cid: str, erased_us: int | None) -> WriteBatch:
        write = CustomerWrite(cid, delete=True, erased_us=erased_us)
        index = IndexDelta()
        index_write(index, write, None, {})
        return WriteBatch([write], index)

    async def body(store: StateStore) -> None:
        claim = await store.claim(2)
        await store.commit(claim, 0, None, [CustomerWrite(c, {"a": "1"}) for c in ("c1", "c2", "c3")])
        await store.commit(claim, 1, None, erasing("c1", to_us(erased_at)))
        await store.commit(claim, 2, None, erasing("c2", None))  # deleted, not erased: no tombstone
        rows = await store.load(2, ["c1", "c2", "c3", "c4"])
        assert rows.keys() == {"c1", "c3"} and is_tombstone(rows["c1"])
        assert await store.load(2, [], claim) == {}  # the standing check alone, tombstones or not
        assert stored_state(rows["c1"], "ns") == CustomerState.new("c1")._replace(erased_at=erased_at)
        await store.commit(claim, 3, None, [CustomerWrite("c1", {"state": "new", "a": "2"})])
        assert (await store.load(2, ["c1"]))["c1"] == {"state": "new", "a": "2"}

    run(_with_store(make_store, body))


def test_customer_ids_lists_every_stored_customer_of_the_partition_only(make_store: StoreFactory) -> None:
    """The walk of a lazy adoption (streams/worker/realign.py): every stored customer, ids with colons and
    non-ASCII included, none of another partition, none deleted."""
    ids = [f"c{n}" for n in range(30)] + ["a:c:b", "é-ü", "x:c:"]

    async def body(store: StateStore) -> None:
        claim, other = await store.claim(0), await store.claim(1)
        await store.commit(claim, 0, None, [CustomerWrite(cid, {"a": "1"}) for cid in [*ids, "gone"]])
        await store.commit(claim, 1, None, [CustomerWrite("gone", delete=True)])
        await store.commit(other, 0, None, [CustomerWrite("elsewhere", {"a": "1"})])
        assert sorted({cid async for cid in store.customer_ids(0)}) == sorted(ids)
        assert [cid async for cid in store.customer_ids(2)] == []

    run(_with_store(make_store, body))


def test_a_sweep_mark_is_fenced_and_read_back_by_the_next_claim(make_store: StoreFactory) -> None:
    """`swept` (streams/worker/sweep_mark.py): committed like any batch, so a fenced owner's mark is refused;
    the latest mark is what the next claim reads, offset and watermark untouched; a cleared one reads as
    none."""

    async def body(store: StateStore) -> None:
        claim = await store.claim(5)
        assert claim.swept_us is None
        await store.commit(claim, 3, 1_000, [CustomerWrite("c1", {"a": "1"}, due_us=50)])
        await store.commit(claim, None, None, WriteBatch([], IndexDelta(swept_us=2_000)))
        await store.commit(claim, None, None, WriteBatch([], IndexDelta(swept_us=3_000)))
        taken = await store.claim(5)
        assert (taken.offset, taken.watermark_us, taken.swept_us) == (3, 1_000, 3_000)
        with pytest.raises(Fenced):
            await store.commit(claim, None, None, WriteBatch([], IndexDelta(swept_us=9_000)))
        assert (await store.claim(5)).swept_us == 3_000
        assert await store.load(5, ["c1"]) == {"c1": {"a": "1"}}
        taken = await store.claim(5)  # the commit of the moves it marked clears it: no mark, not year 1
        await store.commit(taken, None, None, WriteBatch([], IndexDelta(swept_us=CLEARED)))
        assert (await store.claim(5)).swept_us is None

    run(_with_store(make_store, body))
