"""The commit declares the ordinal map chunks (`o:<n>`) it writes (commit.lua, "ordinal map keys"): from the
ordinals the client's cached mappings learn, with no second attempt; a chunk it did not know of is refused by
the script before any write, named, and the same commit goes again with it. Either way the map and the bits
come out exact. Real Redis (and, with SEGSTREAM_TEST_REDIS=cluster, a real Redis Cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from streams.store import membership
from streams.store.connection import async_client
from streams.store.indexes import IndexDelta
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite, WriteBatch
from streams.store.redis_store import RedisStateStore
from tests.services import Services

CUSTOMERS = 256  # ordinals 0-255: chunks 0 and 1, full


def row(seg: str) -> dict[str, str]:
    return {"lifecycle": seg, "monetary_minor": "0", "orders": "0"}


def batch(
    steps: list[tuple[str, Mapping[str, str] | None, dict[str, str] | None]],
    began: tuple[str, ...] = (),
    due_us: int | None = None,
) -> tuple[WriteBatch, dict[str, dict[str, str]]]:
    """One commit built as the worker builds it: the delta holds the before and after mappings, and the after
    mappings (returned, the worker's cache) learn the ordinals the commit gives."""
    delta, writes, cache = IndexDelta(), [], {}
    for cid in began:
        delta.began(cid)
    for cid, before, after in steps:
        if after is None:
            delta.erased(cid)
            delta.customer(cid, before, {})
            writes.append(CustomerWrite(cid, delete=True))
            continue
        mapping = dict(after)
        if before and "_o" in before and cid not in began:
            mapping["_o"] = before["_o"]  # write_for carries it (tests/unit/test_writes_ordinal.py)
        changed = [k for k in after if (before or {}).get(k) != after[k]]
        delta.customer(cid, before, mapping, changed)
        writes.append(CustomerWrite(cid, dict(after), due_us=due_us))
        cache[cid] = mapping
    return WriteBatch(writes, delta), cache


async def stored_map(store: RedisStateStore, client: object, keys: KeySpace) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in range(3):
        for field, cid in (await client.hgetall(keys.ordinals(0, chunk))).items():  # type: ignore[attr-defined]
            out[chunk * membership.CHUNK + int(field)] = cid.decode()
    return out


Members = dict[tuple[str, str], set[str]]


def scenario(
    services: Services, redis_prefix: str, forget_ordinals: bool
) -> tuple[RedisStateStore, dict[int, str], Members]:
    """256 customers created (chunks 0 and 1 full), then in one commit: c5 erased (its chunk 0 entry goes),
    c150 erased and re-created (its chunk 1 entry moves to ordinal 256: a new chunk 2), c300 created (257: the
    counter told by the first commit's reply), c7 moves segment. Returns the store, the stored ordinal map
    and the members."""

    async def body() -> tuple[RedisStateStore, dict[int, str], Members]:
        client = async_client(services.redis_url)
        keys = KeySpace(redis_prefix.rstrip(":"), "ns", "chunks")
        store = RedisStateStore(client, keys)
        try:
            claim = await store.claim(0)
            ids = [f"c{n}" for n in range(CUSTOMERS)]
            first, cache = batch([(cid, None, row("new")) for cid in ids], began=tuple(ids))
            await store.commit(claim, 1, None, first)
            learned = {cid: cache[cid]["_o"] for cid in ("c0", "c5", "c150")}
            assert learned == {"c0": "0", "c5": "5", "c150": "150"}
            if forget_ordinals:  # as after a commit whose reply was lost: the cache knows no ordinal
                for mapping in cache.values():
                    del mapping["_o"]
                store._next_ordinal[0] = None
            second, _ = batch(
                [
                    ("c5", cache["c5"], None),
                    ("c150", cache["c150"], row("active")),
                    ("c300", None, row("active")),
                    ("c7", cache["c7"], row("active")),
                ],
                began=("c150", "c300"),
            )
            await store.commit(claim, 2, None, second)
            snap = await store.read_indexes(0)
            return store, await stored_map(store, client, keys), snap.members
        finally:
            await client.aclose()

    return asyncio.run(body())


EXPECTED_MAP = {n: f"c{n}" for n in range(CUSTOMERS) if n not in (5, 150)} | {256: "c150", 257: "c300"}
EXPECTED_MEMBERS = {
    ("lifecycle", "new"): {f"c{n}" for n in range(CUSTOMERS) if n not in (5, 7, 150)},
    ("lifecycle", "active"): {"c7", "c150", "c300"},
}


def test_cached_mappings_declare_every_chunk_the_commit_writes(services: Services, redis_prefix: str) -> None:
    store, stored, members = scenario(services, redis_prefix, forget_ordinals=False)
    assert (stored, members) == (EXPECTED_MAP, EXPECTED_MEMBERS)
    assert store.chunk_refusals == 0, "the client knew every chunk: no commit went twice"


def test_an_undeclared_chunk_is_refused_unwritten_then_declared(
    services: Services, redis_prefix: str
) -> None:
    store, stored, members = scenario(services, redis_prefix, forget_ordinals=True)
    assert (stored, members) == (EXPECTED_MAP, EXPECTED_MEMBERS)
    assert store.chunk_refusals == 1, "the script named the chunks once; the same commit went again with them"
    # c5's and c150's stored ordinals (chunks 0, 1) and the two ordinals given (chunk 2)
    assert sorted(store.last_refused) == [0, 1, 2]


def test_a_batch_prepared_before_the_last_commit_answered_still_declares_its_chunks(
    services: Services, redis_prefix: str
) -> None:
    """The worker builds batch N+1 from N's cached mappings while N's commit is in flight: N+1's mappings are
    copies made before N's reply told the cache its ordinals. Their ordinals come from N's mappings when N+1
    commits, so a later erasure still declares its chunk."""

    async def body() -> tuple[RedisStateStore, dict[int, str]]:
        client = async_client(services.redis_url)
        keys = KeySpace(redis_prefix.rstrip(":"), "ns", "chunks")
        store = RedisStateStore(client, keys)
        try:
            claim = await store.claim(0)
            ids = [f"c{n}" for n in range(CUSTOMERS)]
            first, cache = batch([(cid, None, row("new")) for cid in ids], began=tuple(ids))
            # prepared before the first commit answers: c200's mapping is copied without an ordinal
            second, cache2 = batch([("c200", cache["c200"], row("active"))])
            assert "_o" not in cache2["c200"]
            await store.commit(claim, 1, None, first)
            await store.commit(claim, 2, None, second)
            assert cache2["c200"]["_o"] == "200"
            third, _ = batch([("c200", cache2["c200"], None)])
            await store.commit(claim, 3, None, third)
            return store, await stored_map(store, client, keys)
        finally:
            await client.aclose()

    store, stored = asyncio.run(body())
    assert stored == {n: f"c{n}" for n in range(CUSTOMERS) if n != 200}
    assert store.chunk_refusals == 0
