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

from collections.abc import Iterable
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


def due_chunks(writes: Iterable[CustomerWrite], index: IndexDelta | None) -> tuple[set[int], bool]:
    """The due chunks of the ordinals the client knows for `writes` (the ones the lifetimes begun take are
    `membership.declared_chunks`'), and whether `q:_` may be written: for a write without index delta, or
    a stored customer without ordinal. commit.lua names any other it needs, and the commit is sent again."""
    if index is None:
        return set(), True
    befores, mappings = index.befores, index.mappings
    chunks: set[int] = set()
    unordered = False
    for w in writes:
        before = befores.get(w.customer_id)
        known = False
        for mapping in (before, mappings.get(w.customer_id)):
            ordinal = None if mapping is None else mapping.get(ORDINAL)
            if ordinal is not None:
                chunks.add(int(ordinal) // CHUNK)
                known = True
        unordered = unordered or (before is not None and not known)
    return chunks, unordered


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


# Read-only: per chunk i, KEYS[i] its due chunk and KEYS[n + i] its ordinal map (or the due chunk again, for
# `_`): its entries up to ARGV[1] and the ids they name, in one atomic step (between two plain reads a commit
# could erase a customer from the ordinal map, or move it to another chunk).
_READ = """local n, out = #KEYS / 2, {}
for i = 1, n do
  local rows, ids = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', ARGV[1], 'WITHSCORES'), {}
  if KEYS[n + i] ~= KEYS[i] and #rows > 0 then
    local members = {}
    for j = 1, #rows, 2 do members[#members + 1] = rows[j] end
    ids = redis.call('HMGET', KEYS[n + i], unpack(members))
  end
  out[i] = {rows, ids}
end
return out"""


async def due_customers(
    client: aioredis.Redis, keys: KeySpace, partition: int, until_us: int, limit: int
) -> list[str]:
    """The (at most `limit`) customers due by `until_us`, earliest first, ties by id (as a sorted set).

    Chunks are read in the order of their earliest time, up to `_GROUP` per round trip, each up to a bound:
    `until_us`, then, once `limit` customers are found, the time of the last one kept (inclusive: a chunk's
    order among equal times is by ordinal, not id). A chunk whose earliest is past the bound ends the read.
    So a sweep of N due customers reads each due entry about once, whatever `limit`. A commit landing
    between two round trips (a live worker asks "anyone due?" with a batch in flight) may move a customer
    between chunks: it is then missed or seen twice, and counted once."""
    if limit <= 0:
        return []
    found: list[tuple[float, str]] = []
    seen: set[str] = set()
    read_chunks = client.register_script(_READ)
    bound, read = until_us, 0
    size = min(_GROUP, limit)  # `limit` 1 (is anyone due?) reads the earliest chunk alone
    while True:
        page = await client.zrangebyscore(
            keys.due(partition), "-inf", bound, start=read, num=size, withscores=True
        )
        heads = [_text(chunk) for chunk, _ in cast(list[tuple[bytes, float]], page)]
        read += len(heads)
        if heads:
            chunk_keys = [keys.due_chunk(partition, c) for c in heads]
            maps = [
                keys.due_chunk(partition, c) if c == UNORDERED else keys.ordinals(partition, int(c))
                for c in heads
            ]
            replies = cast(
                list[list[list[bytes | None]]], await read_chunks(keys=chunk_keys + maps, args=[bound])
            )
            for chunk, (rows, names) in zip(heads, replies, strict=True):
                members, scores = rows[0::2], rows[1::2]
                for n, (member, score) in enumerate(zip(members, scores, strict=True)):
                    cid = member if chunk == UNORDERED else names[n]
                    if cid is None or member is None or score is None:
                        raise RuntimeError(
                            f"partition {partition}: due chunk {chunk} names an ordinal its ordinal map does"
                            " not hold: rebuild the namespace with `segstream replay`"
                        )
                    text = _text(cid)
                    if text not in seen:
                        seen.add(text)
                        found.append((float(score), text))
            found.sort()
            for _, dropped in found[limit:]:
                seen.discard(dropped)
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
