"""The due index answers who is due, earliest first, whatever the customers' ordinals: Redis keeps due times
in ordinal chunks (streams/store/due_index.py), the in-memory store by id; both must equal a plain model
through creations, changes, removals, erasures and re-creations spread over several chunks, ties included."""

from __future__ import annotations

import random

from streams.store.indexes import IndexDelta
from streams.store.port import CustomerWrite, StateStore, WriteBatch
from streams.store.writes import index_write
from tests.contract.test_state_store import StoreFactory, _with_store, make_store, run

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
                for limit in (1, 2, 7, 1000):  # 1 and 2 read the chunks over several pages
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
