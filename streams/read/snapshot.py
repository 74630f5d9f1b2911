"""Aggregate keys of each partition read as one commit left them: counts and day counters that agree.

Why: the sizes over time and a period's KPIs are today's counts (`k:<grid>`) less the moves since (the
`t:<grid>:<week>` keys of the weeks the partition's `w` set lists). Read in separate round trips, a worker
commit in between gave answers no state ever had (a segment of -1 customers on a past day). So each
partition's `w` set, its format and every key asked are read by one script call (the keys of a partition share
its hash tag: one slot, Redis Cluster safe), and a partition whose `w` set changed since its key names were
made from it is read again with the new weeks. Partitions need not agree with each other: a customer lives
in one, and every commit is one partition's.

While a partition's slot migrates to another primary, Redis runs no script over its keys once some have
moved: the source answers ASK for a key already moved, the importing node TRYAGAIN for one not there yet,
until the last key has moved. That is an outage of the slot's reads, not a bug: SlotMigrating (the API's
503, exit code 3), as for a partition walk a migration interrupts
(tests/integration/test_snapshot_in_migration.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import AskError, ClusterError, MovedError, TryAgainError

from streams.store.keys import KeySpace
from streams.store.replies import text
from streams.store.slot_walk import SlotMigrating
from streams.store.weeks import FORMAT_FIELD, check_format, flows_of_week_rows

ATTEMPTS: Final = 8  # weeks only begin; more than a few in a row means something rewrites them
MIGRATING: Final = (AskError, MovedError, TryAgainError, ClusterError)
"""What a call on a migrating slot ends with once redis-py's own retries are spent (ClusterError: its "TTL
exhausted" after TRYAGAIN, streams/store/connection.py)."""
Names = Callable[[int, set[str]], Sequence[str]]  # (partition, its weeks) -> the hashes to read


async def week_snapshot(
    client: Redis, keys: KeySpace, partitions: Iterable[int], names_of: Names
) -> tuple[set[str], dict[str, dict[Any, Any]]]:
    """The weeks holding day counters in any partition, and the HGETALL reply (as the client gives it) of
    each hash `names_of(partition, that partition's weeks)` names, each partition's of one commit. A
    partition of an older layout is refused (`weeks.check_format`)."""
    weeks: dict[int, set[str]] = {p: set() for p in partitions}
    rows: dict[str, dict[Any, Any]] = {}
    pending = list(weeks)
    for _ in range(ATTEMPTS):
        again: list[int] = []
        for p, (offset, kept), found, names, replies in await _read(client, keys, pending, weeks, names_of):
            check_format(keys.namespace, offset, kept)
            if found != weeks[p]:  # a week began since the names were made: its keys were not read
                weeks[p] = found
                again.append(p)
            else:
                rows.update(zip(names, replies, strict=True))
        if not again:
            return set().union(*weeks.values()), rows
        pending = again
    raise TimeoutError("day counters kept changing while they were read: retry")  # the API's 503


PARTITION_READ: Final = """
local out = {redis.call('HMGET', KEYS[1], 'offset', ARGV[1]), redis.call('SMEMBERS', KEYS[2])}
for i = 3, #KEYS do out[#out + 1] = redis.call('HGETALL', KEYS[i]) end
return out
"""
"""One partition's meta, `w` set and hashes, atomic as a script is: a commit (itself one script) lands
before or after it, never between its reads."""


async def _read(
    client: Redis, keys: KeySpace, partitions: list[int], weeks: dict[int, set[str]], names_of: Names
) -> list[tuple[int, list[Any], set[str], Sequence[str], list[Any]]]:
    """Per partition: its meta's offset and format, its `w` set and the replies to `names_of`, read by one
    script call (its keys share the partition's hash tag: one slot), all partitions' calls in one pipeline
    (on a cluster, concurrent calls: a cluster pipeline fails whole when one slot migrates).
    Not one MULTI/EXEC of them all: that held every other client (worker commits, API reads) for the whole
    read, ~160 ms at 64 partitions x 78 weeks; between two partitions' scripts other clients go on."""
    names = {p: names_of(p, weeks[p]) for p in partitions}
    calls = {
        p: ("EVAL", PARTITION_READ, 2 + len(names[p]), keys.partition_meta(p), keys.weeks(p), *names[p],
            FORMAT_FIELD)
        for p in partitions
    }  # fmt: skip
    replies: list[Any]
    if isinstance(client, RedisCluster):  # a pipeline per partition, concurrent: each fails on its own
        replies = list(
            await asyncio.gather(*(_calls(client, [calls[p]]) for p in partitions), return_exceptions=True)
        )
        replies = [r if isinstance(r, BaseException) else r[0] for r in replies]
    else:
        replies = await _calls(client, [calls[p] for p in partitions])
    out: list[tuple[int, list[Any], set[str], Sequence[str], list[Any]]] = []
    for p, reply in zip(partitions, replies, strict=True):
        if isinstance(reply, MIGRATING):
            slot = key_slot(keys.partition_meta(p).encode())
            raise SlotMigrating(slot, "is moving to another primary", "a read of its counters") from reply
        if isinstance(reply, BaseException):
            raise reply
        meta, found, *rows = reply
        out.append((p, meta, {text(w) for w in found}, names[p], [_pairs(row) for row in rows]))
    return out


async def _calls(client: Redis, calls: list[tuple[Any, ...]]) -> list[Any]:
    """The calls in one pipeline (not a transaction), their replies or errors in order."""
    async with client.pipeline(transaction=False) as pipe:
        for call in calls:
            pipe.execute_command(*call)
        return list(await pipe.execute(raise_on_error=False))


def _pairs(flat: list[Any]) -> dict[Any, Any]:
    """A script's HGETALL reply is the flat field, value list; the callers take HGETALL's mapping."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def grid_flows(
    client: Redis, keys: KeySpace, partitions: Iterable[int], grid: str
) -> tuple[dict[str, dict[str, dict[str, int]]], dict[str, int]]:
    """The grid's day flows (day -> segment -> {"in", "out"}, `weeks.flows_of_week_rows`) and its customers
    per segment now (`k:<grid>`), each partition's of one commit: the sizes at the end of a day are the
    counts now less the flows since, so they must agree."""
    parts = list(partitions)

    def names_of(p: int, weeks: set[str]) -> list[str]:
        return [keys.kpis(p, grid), *(keys.moves(p, grid, week) for week in sorted(weeks))]

    known, rows = await week_snapshot(client, keys, parts, names_of)
    moves = ((week, rows.get(keys.moves(p, grid, week), {})) for p in parts for week in sorted(known))
    customers: dict[str, int] = {}
    for p in parts:
        for name, value in rows[keys.kpis(p, grid)].items():
            segment, _, metric = text(name).rpartition(":")
            if metric == "customers":
                customers[segment] = customers.get(segment, 0) + int(value)
    return dict(sorted(flows_of_week_rows(moves).items())), customers
