"""Segment member listing: pages/s and members/s of `SegmentReader.members_page` over the membership bitmaps,
against the SSCAN listing of membership sets it replaced, on the same members in the same run.

    .venv/bin/python benchmarks/bench_members.py [--customers 200000] [--counts 100,1000] [--rounds 3]

Fill: `benchmarks/bench_export.py`'s synthetic customers (hash, ordinal, a bit in each grid's bitmap); the
same ids are also added to a set per partition (SADD), walked the way the reader did before storage format 2
(SSCAN with COUNT = page size, `<partition>:<sscan cursor>`). Every page loop lists all members of lifecycle
`active` (every filled customer). Prints the median of `--rounds` walks per page size, and the bytes per
customer of both structures for that grid (MEMORY USAGE). Removes every key of its own prefix at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import redis
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_export import NAMESPACE, PARTITIONS, TOPIC, cleanup, fill, redis_url
from benchmarks.machine import describe
from streams.read.reader import SegmentReader
from streams.settings import Settings
from streams.store.connection import async_client, sync_client
from streams.store.keys import KeySpace


def add_sets(client: redis.Redis, keys: KeySpace, n: int) -> None:
    """The same members as sets (the layout before format 2), one per partition."""
    from streams.store.partitioning import partition_for

    for low in range(0, n, 5000):
        members: dict[int, list[str]] = {}
        for i in range(low, min(low + 5000, n)):
            cid = f"c{i:09d}"
            members.setdefault(partition_for(cid, PARTITIONS), []).append(cid)
        pipe = client.pipeline(transaction=False)
        for p, ids in members.items():
            pipe.sadd(set_key(keys, p), *ids)
        pipe.execute()


def set_key(keys: KeySpace, p: int) -> str:
    return keys.members(p, "lifecycle", "active") + ":set"


async def walk_bitmaps(reader: SegmentReader, count: int) -> tuple[int, int]:
    pages = members = 0
    cursor: str | None = None
    while True:
        page = await reader.members_page("lifecycle", "active", cursor, count)
        pages, members = pages + 1, members + len(page.members)
        if page.next_cursor is None:
            return pages, members
        cursor = page.next_cursor


async def walk_sets(client: aioredis.Redis, keys: KeySpace, count: int) -> tuple[int, int]:
    """The listing before format 2 (streams/read/reader.py at 0c6137a), on the sets."""
    pages = members = 0
    partition, position = 0, 0
    while partition < PARTITIONS:
        found: list[str | bytes] = []
        while partition < PARTITIONS:
            position, chunk = await client.sscan(set_key(keys, partition), cursor=position, count=count)
            found += chunk
            if position == 0:
                partition, position = partition + 1, 0
            if len(found) >= count:
                break
        pages, members = pages + 1, members + len(found)
    return pages, members


async def measure(url: str, keys: KeySpace, n: int, counts: list[int], rounds: int) -> None:
    settings = Settings(redis_url=url, key_prefix=keys.prefix, namespace=NAMESPACE, events_topic=TOPIC,
                        topic_partitions=PARTITIONS)  # fmt: skip
    client = async_client(url, decode_responses=True)
    reader = SegmentReader(client, settings)
    try:
        for count in counts:
            for name in ("sets (SSCAN)", "bitmaps"):
                times = []
                for _ in range(rounds):
                    began = time.perf_counter()
                    if name == "bitmaps":
                        pages, members = await walk_bitmaps(reader, count)
                    else:
                        pages, members = await walk_sets(client, keys, count)
                    times.append(time.perf_counter() - began)
                    if members < n:  # SSCAN may repeat a member, never miss one that stays
                        raise SystemExit(f"{name}: listed {members} of {n}")
                took = statistics.median(times)
                print(
                    f"  count {count:>5}  {name:<13} {pages:>6,} pages  {pages / took:>8,.0f} pages/s"
                    f"  {members / took:>10,.0f} members/s  ({took:.2f} s, median of {rounds})"
                )
    finally:
        await client.aclose()


def memory(client: redis.Redis, keys: KeySpace, n: int) -> None:
    sets = sum(client.memory_usage(set_key(keys, p), samples=0) or 0 for p in range(PARTITIONS))
    bitmaps = sum(client.memory_usage(keys.members(p, "lifecycle", "active"), samples=0) or 0
                  for p in range(PARTITIONS))  # fmt: skip
    ordinals = sum(client.memory_usage(k, samples=0) or 0 for p in range(PARTITIONS)
                   for k in client.scan_iter(match=keys.ordinals(p, 0)[:-1] + "*", count=5000))  # fmt: skip
    print(f"  lifecycle grid, bytes per customer: set {sets / n:.1f}; bitmap {bitmaps / n:.2f}"
          f" (+ ordinal map {ordinals / n:.1f}, shared by every grid)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--counts", default="100,1000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = redis_url()
    prefix = f"bench-members-{uuid.uuid4().hex[:8]}"
    keys = KeySpace(prefix, NAMESPACE, TOPIC)
    client = sync_client(url)
    print(f"machine: {describe()}")
    try:
        seconds = fill(client, keys, 0, args.customers)
        add_sets(client, keys, args.customers)
        print(f"filled {args.customers:,} customers in {seconds:.1f} s (prefix {prefix})")
        memory(client, keys, args.customers)
        counts = [int(c) for c in args.counts.split(",")]
        asyncio.run(measure(url, keys, args.customers, counts, args.rounds))
    finally:
        print(f"cleanup: {cleanup(client, prefix):,} keys removed under {prefix}:")
        client.close()


if __name__ == "__main__":
    main()
