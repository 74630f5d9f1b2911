"""The due index: who has a time-driven change (lifecycle ageing, recency, ...) due, by when.

Why chunks and not one sorted set of ids: a sorted set past 128 members is a skiplist, ~70 bytes per customer
(72 of an 18-month import's ~1,180 bytes per customer, issue #13). Each customer's due time is kept in the
chunk of its membership ordinal instead, `q:<ordinal // 128>` (member `<ordinal % 128>`), which never holds
more than 128 entries and so stays a listpack (~14 bytes an entry, whatever the population), and the
partition's `due` key holds each chunk's earliest time. The ordinal map (`o:` chunks) names the customers
back. A customer the store gave no ordinal (written without membership, by tools and tests) is kept by id
in chunk `_`. commit.lua writes all three in the batch's commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, cast

import redis.asyncio as aioredis
from redis import Redis as SyncRedis

from streams.store.indexes import ORDINAL, IndexDelta
from streams.store.keys import KeySpace
from streams.store.membership import CHUNK
from streams.store.port import CustomerWrite

__all__ = ["UNORDERED", "due_at", "due_chunks", "due_customers", "due_entries", "overdue"]

UNORDERED: Final = "_"  # the chunk of customers without ordinal, by id
_GROUP: Final = 64  # chunks read per round trip


def due_chunks(writes: Iterable[CustomerWrite], index: IndexDelta | None) -> set[int]:
    """The due chunks of the ordinals the client knows for `writes` (the ones the lifetimes begun take are
    `membership.declared_chunks`'); commit.lua names any other it needs, and the commit is sent again."""
    befores: Mapping[str, Mapping[str, str]] = index.befores if index is not None else {}
    mappings: Mapping[str, Mapping[str, str]] = index.mappings if index is not None else {}
    chunks: set[int] = set()
    for w in writes:
        for mapping in (befores.get(w.customer_id), mappings.get(w.customer_id)):
            ordinal = None if mapping is None else mapping.get(ORDINAL)
            if ordinal is not None:
                chunks.add(int(ordinal) // CHUNK)
    return chunks


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


async def due_customers(
    client: aioredis.Redis, keys: KeySpace, partition: int, until_us: int, limit: int
) -> list[str]:
    """The (at most `limit`) customers due by `until_us`, earliest first, ties by id (as a sorted set).

    Chunks are read in the order of their earliest time, up to `_GROUP` per round trip, each up to a bound:
    `until_us`, then, once `limit` customers are found, the time of the last one kept (inclusive: a chunk's
    order among equal times is by ordinal, not id). A chunk whose earliest is past the bound ends the read.
    So a sweep of N due customers reads each due entry about once, whatever `limit`."""
    found: list[tuple[float, str]] = []
    bound, read = until_us, 0
    size = max(1, min(_GROUP, limit))  # `limit` 1 (is anyone due?) reads the earliest chunk alone
    while True:
        heads = cast(
            list[tuple[bytes, float]],
            await client.zrangebyscore(
                keys.due(partition), "-inf", bound, start=read, num=size, withscores=True
            ),
        )
        read += len(heads)
        group = [_text(chunk) for chunk, _ in heads]
        async with client.pipeline(transaction=False) as pipe:
            for chunk in group:
                pipe.zrangebyscore(keys.due_chunk(partition, chunk), "-inf", bound, withscores=True)
            entries = await pipe.execute()
        named: list[tuple[str, list[tuple[bytes, float]]]] = list(zip(group, entries, strict=True))
        async with client.pipeline(transaction=False) as pipe:
            for chunk, rows in named:
                if chunk != UNORDERED and rows:
                    pipe.hmget(keys.ordinals(partition, int(chunk)), [member for member, _ in rows])
            ids = iter(await pipe.execute())
        for chunk, rows in named:
            if chunk == UNORDERED:
                found += ((score, _text(member)) for member, score in rows)
            elif rows:
                for (member, score), cid in zip(rows, next(ids), strict=True):
                    if cid is None:
                        raise RuntimeError(
                            f"partition {partition}: due chunk {chunk} names ordinal {_text(member)}, which"
                            " its ordinal map does not hold: rebuild the namespace with `segstream replay`"
                        )
                    found.append((score, _text(cid)))
        found.sort()
        del found[limit:]
        if len(found) >= limit:
            bound = int(found[-1][0])  # integral µs, exact in a double below 2^53
        if len(heads) < size:
            return [cid for _, cid in found]


def due_entries(client: SyncRedis, keys: KeySpace, partition: int) -> list[tuple[str, float]]:
    """Every due customer of the partition and its due time (µs), earliest first (checks and tests)."""
    chunks = [_text(c) for c in cast(list[bytes], client.zrange(keys.due(partition), 0, -1))]
    out: list[tuple[float, str]] = []
    for chunk in chunks:
        rows = cast(
            list[tuple[bytes, float]], client.zrange(keys.due_chunk(partition, chunk), 0, -1, withscores=True)
        )
        if chunk == UNORDERED:
            out += ((score, _text(member)) for member, score in rows)
        elif rows:
            names = client.hmget(keys.ordinals(partition, int(chunk)), [member for member, _ in rows])
            ids = cast(list[bytes | None], names)
            out += ((score, "?" if c is None else _text(c)) for (_, score), c in zip(rows, ids, strict=True))
    return [(cid, score) for score, cid in sorted(out)]


def overdue(client: SyncRedis, keys: KeySpace, partition: int, until_us: int) -> int:
    """How many customers of the partition are due by `until_us` (a sweep left none behind: 0)."""
    heads = cast(list[bytes], client.zrangebyscore(keys.due(partition), "-inf", until_us))
    chunks = [_text(c) for c in heads]
    with client.pipeline(transaction=False) as pipe:
        for chunk in chunks:
            pipe.zcount(keys.due_chunk(partition, chunk), "-inf", until_us)
        return sum(cast(list[int], pipe.execute()))


def due_at(client: SyncRedis, keys: KeySpace, partition: int, customer_id: str) -> float | None:
    """The customer's due time in the index (µs), or None."""
    return dict(due_entries(client, keys, partition)).get(customer_id)
