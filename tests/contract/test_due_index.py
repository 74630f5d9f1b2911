"""The due index answers who is due, earliest first, whatever the customers' ordinals: Redis keeps due times
in ordinal chunks (streams/store/due_index.py), the in-memory store by id; both must equal a plain model
through creations, changes, removals, erasures and re-creations spread over several chunks, ties included."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.exceptions import ResponseError

from streams.store.connection import async_client
from streams.store.due_index import due_customers
from streams.store.indexes import IndexDelta
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite, StateStore, WriteBatch
from streams.store.redis_store import RedisStateStore
from streams.store.writes import index_write
from tests.contract.test_state_store import StoreFactory, _with_store, make_store, run
from tests.services import Services

__all__ = ["make_store"]  # the fixture: both stores

CUSTOMERS = 320  # three chunks of 128 ordinals, more with re-creations
SEGMENTS = ("new", "active", "at_risk")


def _expected(model: dict[str, int], until: int, limit: int) -> list[str]:
    return [cid for at, cid in sorted((at, cid) for cid, at in model.items() if at <= until)][:limit]


def test_due_customers_match_a_model_across_chunks(make_store: StoreFactory) -> None:
    async def body(store: StateStore) -> None:
        rng = random.Random(7)
        claim = await store.claim(0)
        model: dict[str, int] = {}  # customer -> due µs
        for offset in range(30):
            chosen = sorted({f"c{rng.randrange(CUSTOMERS):03d}" for _ in range(60)})
            stored = await store.load(0, chosen)
            index, writes = IndexDelta(), []
            for cid in chosen:
                before = stored.get(cid)
                if before is not None and rng.random() < 0.1:  # erased
                    write = CustomerWrite(cid, delete=True)
                    index_write(index, write, before, {})
                    model.pop(cid, None)
                else:
                    due = rng.choice([None, rng.randrange(0, 40), rng.randrange(0, 10**6)])
                    after = {"lifecycle": rng.choice(SEGMENTS), "n": str(offset)}
                    write = CustomerWrite(cid, dict(after), due_us=due)
                    if before is None:
                        index.began(cid)  # a lifetime begun: the next ordinal
                    index_write(index, write, before, after)
                    if due is None:
                        model.pop(cid, None)
                    else:
                        model[cid] = due
                writes.append(write)
            await store.commit(claim, offset, None, WriteBatch(writes, index))
            for until in (-1, 0, 5, 20, 39, 10**6, 10**18):
                for limit in (0, 1, 2, 7, 1000):  # 1 and 2 read the chunks over several pages
                    got = await store.due(0, until, limit)
                    assert got == _expected(model, until, limit), (offset, until, limit)
        assert len(model) > 128  # more than one chunk held due customers

    run(_with_store(make_store, body))


def test_customers_written_without_ordinal_and_with_one_are_due_together(make_store: StoreFactory) -> None:
    """A tool's write without membership (no ordinal) and a worker's (an ordinal) share one order."""

    async def body(store: StateStore) -> None:
        claim = await store.claim(0)
        await store.commit(claim, 0, None, [CustomerWrite("plain", {"x": "1"}, due_us=20)])
        index = IndexDelta()
        write = CustomerWrite("member", {"lifecycle": "new"}, due_us=10)
        index.began("member")
        index_write(index, write, None, {"lifecycle": "new"})
        await store.commit(claim, 1, None, WriteBatch([write], index))
        assert await store.due(0, 100, 10) == ["member", "plain"]
        # the plain customer now enters a segment, takes an ordinal and keeps its due time (moved chunk)
        before = (await store.load(0, ["plain"]))["plain"]
        index = IndexDelta()
        write = CustomerWrite("plain", {"lifecycle": "new"}, due_us=5)
        index_write(index, write, before, {**before, "lifecycle": "new"})
        await store.commit(claim, 2, None, WriteBatch([write], index))
        assert await store.due(0, 100, 10) == ["plain", "member"]
        assert await store.due(0, 7, 10) == ["plain"]

    run(_with_store(make_store, body))


def test_a_customer_deleted_and_written_again_in_one_batch_is_due_once(make_store: StoreFactory) -> None:
    """A plain batch [delete c, write c] rewrites the hash without its ordinal: c's due time moves, once."""

    async def body(store: StateStore) -> None:
        claim = await store.claim(0)
        await _created(store, claim, 0, "c", 5)
        writes = [CustomerWrite("c", delete=True), CustomerWrite("c", {"x": "1"}, due_us=7)]
        await store.commit(claim, 1, None, writes)
        assert await store.due(0, 100, 10) == ["c"]
        await store.commit(claim, 2, None, [CustomerWrite("c", {"x": "2"}, due_us=9)])
        assert (await store.due(0, 8, 10), await store.due(0, 100, 10)) == ([], ["c"])

    run(_with_store(make_store, body))


def test_a_due_time_marked_unchanged_stays_and_is_moved_where_it_must_be(make_store: StoreFactory) -> None:
    """`due_kept` (the stored due time is this one already) lets the script leave an entry as it is, but
    not for a customer written twice in the commit or given a new ordinal by it: those move as usual."""

    async def body(store: StateStore) -> None:
        claim = await store.claim(0)
        for offset, (cid, due) in enumerate((("kept", 10), ("twice", 20), ("renewed", 30), ("none", 40))):
            await _created(store, claim, offset, cid, due)
        stored = await store.load(0, ["renewed"])
        index, after = IndexDelta(), {"lifecycle": "active"}
        renewed = CustomerWrite("renewed", dict(after), due_us=30, due_kept=True)
        index.began("renewed")  # a new lifetime: the next ordinal, so its entry must move there
        index_write(index, renewed, stored["renewed"], after)
        writes = [
            CustomerWrite("kept", {"x": "1"}, due_us=10, due_kept=True),
            CustomerWrite("twice", {"x": "1"}, due_us=25),  # moved by the first write of the commit...
            CustomerWrite("twice", {"x": "2"}, due_us=25, due_kept=True),  # ...unchanged after it
            renewed,
            CustomerWrite("none", {"x": "1"}, due_us=None),  # no longer due
        ]
        await store.commit(claim, 4, None, WriteBatch(writes, index))
        assert await store.due(0, 10**6, 10) == ["kept", "twice", "renewed"]
        assert (await store.due(0, 24, 10), await store.due(0, 29, 10)) == (["kept"], ["kept", "twice"])
        await store.commit(claim, 5, None, [CustomerWrite("none", {"x": "2"}, due_us=None, due_kept=True)])
        await store.commit(claim, 6, None, [CustomerWrite("renewed", {"x": "2"}, due_us=30, due_kept=True)])
        assert await store.due(0, 10**6, 10) == ["kept", "twice", "renewed"]
        # the mark is trusted (the worker sets it only where it holds): a wrong one leaves the entry stale,
        # on both stores, so a wrong mark fails tests over either
        await store.commit(claim, 7, None, [CustomerWrite("kept", {"x": "3"}, due_us=35, due_kept=True)])
        assert (await store.due(0, 10, 10), await store.due(0, 9, 10)) == (["kept"], [])

    run(_with_store(make_store, body))


async def _created(store: StateStore, claim: Any, offset: int, cid: str, due: int) -> None:
    """A customer's first write, as the worker makes it: a lifetime begun, so the next ordinal."""
    index, after = IndexDelta(), {"lifecycle": "new"}
    write = CustomerWrite(cid, dict(after), due_us=due)
    index.began(cid)
    index_write(index, write, None, after)
    await store.commit(claim, offset, None, WriteBatch([write], index))


class _Hooked:
    """A client whose `n`-th round trip (command, script or pipeline) runs `hook` once after its reply."""

    def __init__(self, url: str, n: int, hook: Callable[[], Awaitable[None]]) -> None:
        self.client, self.n, self.hook, self.trips = async_client(url), n, hook, 0
        command: Callable[..., Awaitable[Any]] = self.client.execute_command
        pipeline = self.client.pipeline

        async def execute_command(*args: Any, **kwargs: Any) -> Any:
            return await self._after(await command(*args, **kwargs))

        def make_pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = pipeline(*args, **kwargs)
            execute = pipe.execute

            async def hooked(*a: Any, **k: Any) -> Any:
                return await self._after(await execute(*a, **k))

            pipe.execute = hooked  # type: ignore[method-assign]
            return pipe

        self.client.execute_command = execute_command  # type: ignore[method-assign]
        self.client.pipeline = make_pipeline  # type: ignore[method-assign]

    async def _after(self, reply: Any) -> Any:
        self.trips += 1
        if self.trips == self.n:
            await self.hook()
        return reply


@pytest.mark.integration
def test_a_commit_between_two_round_trips_of_due_never_breaks_the_answer(
    services: Services, redis_prefix: str
) -> None:
    """A live worker asks "anyone due?" while a batch's commit is in flight: that commit may erase a due
    customer and create it again (a new ordinal, in another chunk) between any two round trips of the read.
    The read must not fail (an ordinal whose id is gone) nor name a customer twice."""

    async def one_trip(trip: int) -> None:
        keys = KeySpace(f"{redis_prefix}race{trip}", "ns", "events")
        writer = async_client(services.redis_url)
        store = RedisStateStore(writer, keys)
        claim = await store.claim(0)
        for n in range(130):  # two chunks; t takes ordinal 3, due before everyone
            await _created(store, claim, n, "t" if n == 3 else f"c{n:03d}", 5 if n == 3 else 50 + n)
        offset = 130

        async def erase_and_return() -> None:
            nonlocal offset
            before = (await store.load(0, ["t"]))["t"]
            index, write = IndexDelta(), CustomerWrite("t", delete=True)
            index_write(index, write, before, {})
            await store.commit(claim, offset, None, WriteBatch([write], index))
            await _created(store, claim, offset + 1, "t", 5)  # a new ordinal, in chunk 1
            offset += 2

        for limit in (1, 3):
            reader = _Hooked(services.redis_url, trip, erase_and_return)
            try:
                got = await due_customers(reader.client, keys, 0, 100, limit)
            finally:
                await reader.client.aclose()
            assert len(got) == len(set(got)) <= limit
            assert set(got) <= {"t", "c000", "c001", "c002"}
            assert await store.due(0, 100, 1) == ["t"]  # the index holds it once, where it is now
        await writer.aclose()

    async def body() -> None:
        for trip in range(1, 6):
            await one_trip(trip)

    run(body())


@pytest.mark.integration
def test_membership_for_a_customer_the_batch_does_not_write_is_refused(
    services: Services, redis_prefix: str
) -> None:
    """The commit moves a customer's due time with its ordinal only for the customers it writes."""

    async def body() -> None:
        client = async_client(services.redis_url)
        try:
            store = RedisStateStore(client, KeySpace(redis_prefix.rstrip(":"), "ns", "events"))
            claim = await store.claim(0)
            index = IndexDelta()
            index.began("ghost")
            index_write(index, CustomerWrite("ghost", {"lifecycle": "new"}), None, {"lifecycle": "new"})
            with pytest.raises(ResponseError, match="BITS names a customer not written"):
                await store.commit(claim, 0, None, WriteBatch([CustomerWrite("d", {"x": "1"})], index))
            assert await store.read_meta(0) == (None, None)
        finally:
            await client.aclose()

    run(body())
