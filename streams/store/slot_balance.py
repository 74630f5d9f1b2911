"""Slot balance: which Redis node serves each Kafka partition, and how customers and memory spread over nodes.

Every key of a partition shares one hash tag (streams/store/keys.py), so a partition is one slot and one
node: data and load balance at partition granularity only. This reads, per partition, the slot of its tag
(redis-py `key_slot`), the primary serving it (CLUSTER SLOTS, asked of the server, not a client's cache),
its customers from the KPI counters the commit script keeps (`k:<grid>` `<segment>:customers`, summed over
one grid's segments: every customer is in exactly one segment of each grid; O(grids) per partition), and its
memory by MEMORY USAGE: exact for the partition's fixed keys (meta, due, the per-grid counters, bitmaps,
crossings) and estimated for the customer hashes and ordinal chunks (a sample, the mean times the count),
so nothing scans the keyspace. `exact=True` walks the namespace with SCAN instead (slower, for checking).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.crc import key_slot

from segmentation import Definitions
from streams.store.due_index import UNORDERED
from streams.store.keys import KeySpace
from streams.store.membership import CHUNK  # customers per ordinal chunk `o:<n>`
from streams.store.namespaces import glob_escape
from streams.store.replies import text as _text
from streams.store.weeks import period_years

SINGLE = "single server"


@dataclass(frozen=True)
class PartitionLoad:
    partition: int
    slot: int
    node: str  # "host:port" of the primary serving the slot; SINGLE without a cluster
    customers: int
    memory_bytes: int


@dataclass(frozen=True)
class NodeLoad:
    node: str
    partitions: int
    customers: int
    memory_bytes: int
    customer_share: float  # of all the namespace's customers (0..1)
    memory_share: float


@dataclass(frozen=True)
class Balance:
    namespace: str
    topic: str
    cluster: bool
    memory: str  # "estimate" (sampled) or "exact" (SCAN)
    max_skew: float
    customer_skew: float  # largest node's customers / mean per node - 1
    memory_skew: float
    partitions: list[PartitionLoad]
    nodes: list[NodeLoad]
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def skew(values: list[int]) -> float:
    """How far the largest value is above the mean (0.25: 25 % above); 0 for no load or one node."""
    total = sum(values)
    if not values or total == 0:
        return 0.0
    return max(values) / (total / len(values)) - 1.0


async def slot_owners(client: aioredis.Redis) -> tuple[list[str], dict[int, str]]:
    """(every primary, slot -> primary) from CLUSTER SLOTS and CLUSTER NODES (the server's view, not the
    client's cache); ([SINGLE], {}) on a single server."""
    if not isinstance(client, AsyncRedisCluster):
        return [SINGLE], {}
    rows = await client.execute_command("CLUSTER SLOTS", target_nodes=AsyncRedisCluster.RANDOM)
    owners: dict[int, str] = {}
    primaries: set[str] = set()
    for (start, end), info in _slot_ranges(rows):
        for slot in range(start, end + 1):
            owners[slot] = info
        primaries.add(info)
    nodes = await client.execute_command("CLUSTER NODES", target_nodes=AsyncRedisCluster.RANDOM)
    for address, info in nodes.items():  # a primary serving no slot at all is the worst skew: count it
        flags = str(info["flags"]).split(",")
        if "master" in flags and "fail" not in flags:
            primaries.add(_text(address).split("@", 1)[0])
    return sorted(primaries), owners


def _slot_ranges(rows: Any) -> list[tuple[tuple[int, int], str]]:
    """redis-py parses CLUSTER SLOTS into {(start, end): {"primary": (host, port), ...}}; raw rows also do."""
    if isinstance(rows, dict):
        return [((int(s), int(e)), _node(v["primary"])) for (s, e), v in rows.items()]
    return [((int(r[0]), int(r[1])), _node(r[2])) for r in rows]


def _node(entry: Any) -> str:
    return f"{_text(entry[0])}:{int(entry[1])}"


async def measure(
    client: aioredis.Redis,
    keys: KeySpace,
    partitions: int,
    definitions: Definitions,
    max_skew: float = 0.25,
    samples: int = 32,
    exact: bool = False,
) -> Balance:
    primaries, owners = await slot_owners(client)
    grids = list(definitions.grid_segments)
    customers = await _customers(client, keys, partitions, grids[0])
    if exact:
        memory = await _exact_memory(client, keys, partitions)
    else:
        memory = [
            await _estimated_memory(client, keys, p, definitions, customers[p], samples)
            for p in range(partitions)
        ]
    loads = []
    for p in range(partitions):
        slot = key_slot(keys.partition_meta(p).encode())
        loads.append(PartitionLoad(p, slot, owners.get(slot, SINGLE), customers[p], memory[p]))
    return _balance(keys, primaries, loads, max_skew, "exact" if exact else "estimate", bool(owners))


def _balance(
    keys: KeySpace,
    primaries: list[str],
    loads: list[PartitionLoad],
    max_skew: float,
    method: str,
    cluster: bool,
) -> Balance:
    total_c = sum(x.customers for x in loads) or 1
    total_m = sum(x.memory_bytes for x in loads) or 1
    nodes = []
    for name in primaries:
        mine = [x for x in loads if x.node == name]
        c, m = sum(x.customers for x in mine), sum(x.memory_bytes for x in mine)
        nodes.append(NodeLoad(name, len(mine), c, m, c / total_c, m / total_m))
    c_skew, m_skew = skew([n.customers for n in nodes]), skew([n.memory_bytes for n in nodes])
    warnings = []
    for what, value, pick in (("customers", c_skew, "customers"), ("memory", m_skew, "memory_bytes")):
        if value > max_skew:
            top = max(nodes, key=lambda n: int(getattr(n, pick)))
            share = top.customer_share if what == "customers" else top.memory_share
            warnings.append(
                f"{what} skewed: node {top.node} holds {share:.0%} ({value:+.0%} over the mean of "
                f"{len(nodes)} nodes; limit {max_skew:.0%}): move the slot of one of its partitions with "
                "redis-cli --cluster reshard (docs/redis_cluster.md)"
            )
    return Balance(
        keys.namespace, keys.topic, cluster, method, max_skew, c_skew, m_skew, loads, nodes, warnings
    )


async def _customers(client: aioredis.Redis, keys: KeySpace, partitions: int, grid: str) -> list[int]:
    """Per partition: the sum of one grid's `<segment>:customers` counters (each customer is in one)."""
    out = []
    for p in range(partitions):
        row = await client.hgetall(keys.kpis(p, grid))
        out.append(sum(int(v) for k, v in row.items() if _text(k).endswith(":customers")))
    return out


async def _usage(client: aioredis.Redis, names: list[str]) -> list[int]:
    """MEMORY USAGE of each key (0 when absent), in one round trip (per node on a cluster)."""
    if not names:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.memory_usage(name, samples=0)
        return [int(x or 0) for x in await pipe.execute()]


def fixed_keys(
    keys: KeySpace, partition: int, definitions: Definitions, weeks: Iterable[str] = ()
) -> list[str]:
    """The partition's keys whose number does not grow with its customers (the day counters' grow with the
    `weeks` that hold counters, listed by the partition's `w` set)."""
    p = partition
    names = [keys.partition_meta(p), keys.due(p), keys.due_chunk(p, UNORDERED), keys.erased(p), keys.weeks(p)]
    for grid, segments in definitions.grid_segments.items():
        names += [keys.kpis(p, grid)]
        names += [keys.segment_periods(p, grid, year) for year in period_years(weeks)]
        for week in weeks:
            names += [keys.moves(p, grid, week), keys.segment_days(p, grid, week)]
        names += [keys.members(p, grid, segment) for segment in segments]
    names += [keys.crosstab(p, f"{a}|{b}") for a, b in definitions.kpis.crosstabs]
    return names


async def _estimated_memory(
    client: aioredis.Redis,
    keys: KeySpace,
    partition: int,
    definitions: Definitions,
    customers: int,
    samples: int,
) -> int:
    """Exact for the fixed keys; customer hashes, ordinal and due chunks: a sample's mean times the count."""
    weeks = [_text(week) for week in await client.smembers(keys.weeks(partition))]
    fixed = sum(await _usage(client, fixed_keys(keys, partition, definitions, weeks)))
    ordinals = int(await client.hget(keys.partition_meta(partition), "ordinals") or 0)
    chunks = math.ceil(ordinals / CHUNK)
    if not chunks:
        return fixed
    picked = sorted({round(i * (chunks - 1) / max(1, min(chunks, 8) - 1)) for i in range(min(chunks, 8))})
    chunk_names = [keys.ordinals(partition, n) for n in picked]
    chunk_sizes = await _usage(client, chunk_names + [keys.due_chunk(partition, n) for n in picked])
    ids: list[str] = []
    for name in chunk_names:
        ids += [_text(v) for v in (await client.hgetall(name)).values()]
    step = max(1, len(ids) // max(1, samples))
    sampled = ids[::step][:samples]
    sizes = await _usage(client, [keys.customer(partition, cid) for cid in sampled])
    per_customer = sum(sizes) / len(sizes) if sizes else 0.0
    per_chunk = sum(chunk_sizes) / len(picked)  # its ordinal map and due chunk
    return fixed + round(per_chunk * chunks + per_customer * customers)


async def _exact_memory(client: aioredis.Redis, keys: KeySpace, partitions: int) -> list[int]:
    """Every key of the namespace by SCAN, MEMORY USAGE summed per partition tag (slow on big namespaces)."""
    tags = {keys.partition_meta(p)[: -len("meta")]: p for p in range(partitions)}
    out = [0] * partitions
    base = f"{keys.prefix}:{keys.namespace}:{{"
    batch: list[tuple[int, str]] = []

    async def flush() -> None:
        for (p, _), size in zip(batch, await _usage(client, [k for _, k in batch]), strict=True):
            out[p] += size
        batch.clear()

    async for raw in client.scan_iter(match=glob_escape(base) + "*", count=1000):
        key = _text(raw)
        head, sep, _ = key.partition("}:")
        partition = tags.get(head + sep)
        if partition is not None:
            batch.append((partition, key))
            if len(batch) >= 500:
                await flush()
    await flush()
    return out
