"""Read-side figures: get_customer p50/p99 through the client and over HTTP at a steady rate, and Redis memory
per customer (state hash + membership bitmaps + KPI/flow hashes + history) for N synthetic customers.

    .venv/bin/python benchmarks/bench_read.py [--customers 1000000] [--rate 1000] [--seconds 10]

Uses SEGSTREAM_REDIS_URL when set, else the local stack. Customers are written with the worker's own commit
path (RedisStateStore.commit with a WriteBatch: same Lua script, same index ops), in bulk, under a fresh key
prefix; every key is removed at the end. Memory is INFO used_memory after minus before, divided by N.
Latency is measured from each request's scheduled start (open loop), so queueing behind a slow request counts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe
from segmentation import CustomerState, Definitions, Transition, apply, parse_event
from segmentation.duplicates import KEY_SIZE, event_key
from segmentation.state_mapping import readable_fields, state_to_mapping
from streams.read import SegmentReader
from streams.settings import Settings
from streams.store import history_format
from streams.store.connection import async_client
from streams.store.indexes import IndexDelta
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite, WriteBatch
from streams.store.redis_store import RedisStateStore

PARTITIONS = 4
TEMPLATE = "tmpl-customer-00"


def redis_url() -> str:
    url = os.environ.get("SEGSTREAM_REDIS_URL")
    if url:
        return url
    from streams import devstack

    return str(devstack.up().config.redis_url)


def template() -> tuple[CustomerState, list[Transition]]:
    """A realistic customer: a year of purchases, emails, a refund and a survey (its hash and history)."""
    import orjson

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    defs, state = Definitions.default(), CustomerState.new(TEMPLATE)
    entries: list[Transition] = []
    events: list[dict[str, object]] = []
    for i in range(12):
        at = t0 + timedelta(days=30 * i)
        events.append(
            {"type": "purchase", "order_id": f"o{i}", "amount": "42.50", "currency": "EUR", "channel": "web"}
        )
        events[-1]["occurred_at"] = at.isoformat()
        events.append({"type": "email_open", "occurred_at": (at + timedelta(days=2)).isoformat()})
    events.append(
        {"type": "survey_response", "score": 8, "occurred_at": (t0 + timedelta(days=200)).isoformat()}
    )
    for n, body in enumerate(sorted(events, key=lambda e: str(e["occurred_at"]))):
        raw = {"event_id": f"{TEMPLATE}-e{n:04d}", "customer_id": TEMPLATE, "schema_version": 1, **body}
        outcome = apply(state, parse_event(orjson.dumps(raw)), defs)
        state = outcome.state
        entries += outcome.transitions
    return state, entries


async def write_customers(
    store: RedisStateStore, n: int, history_size: int, start: int = 0, chunk: int = 500
) -> float:
    state, entries = template()
    remembered = len(state.recent_ids) // KEY_SIZE

    def window(cid: str) -> bytes:
        """The template's window as this customer's own ids would make it (digests differ per customer)."""
        return b"".join(event_key(f"{cid}-e{k:04d}") for k in range(remembered))

    # the coded history holds no customer id (the reader hashes it into each id): one blob fits every copy
    blob = history_format.appended(None, entries, history_size)
    started = time.perf_counter()
    claims = {p: await store.claim(p) for p in range(PARTITIONS)}
    offsets = {p: (await store.read_meta(p))[0] or 0 for p in range(PARTITIONS)}
    from streams.store.partitioning import partition_for

    pending: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}

    async def flush(p: int) -> None:
        ids, pending[p] = pending[p], []
        delta = IndexDelta()
        writes = []
        for cid in ids:
            mine = state._replace(customer_id=cid, recent_ids=window(cid))
            row = state_to_mapping(mine)
            row[history_format.FIELD] = blob
            row["_offset"] = f"{p}:{offsets[p]}"
            writes.append(CustomerWrite(cid, row, due_us=1_800_000_000_000_000))
            delta.customer(cid, None, {**row, **readable_fields(mine)})  # the view: `not_member` too
        offsets[p] += 1
        await store.commit(claims[p], offsets[p], None, WriteBatch(writes, delta))

    for i in range(start, start + n):
        cid = f"c{i:09d}"
        p = partition_for(cid, PARTITIONS)
        pending[p].append(cid)
        if len(pending[p]) >= chunk:
            await flush(p)
    for p in range(PARTITIONS):
        if pending[p]:
            await flush(p)
    return time.perf_counter() - started


async def paced(rate: float, seconds: float, call: Callable[[], Awaitable[object]]) -> list[float]:
    """Steady `rate`/s. Latency counts from the scheduled start when behind schedule (a stall delays and
    counts for the next requests), else from the actual send (event-loop oversleep is not the server's)."""
    latencies: list[float] = []
    total = int(rate * seconds)
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        now = time.perf_counter()
        if scheduled > now:
            await asyncio.sleep(scheduled - now)
            scheduled = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - scheduled)
    return latencies


def summary(name: str, latencies: list[float], seconds: float) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p50, p99 = statistics.median(ms), ms[int(len(ms) * 0.99) - 1]
    achieved = len(ms) / seconds
    return (
        f"  {name:34} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   max {ms[-1]:7.2f} ms   ({achieved:,.0f} req/s)"
    )


async def latency(url: str, settings: Settings, n: int, rate: float, seconds: float) -> None:
    ids = [f"c{random.randrange(n):09d}" for _ in range(10_000)]
    pick = itertools.cycle(ids).__next__
    client = async_client(url, decode_responses=True, encoding_errors="surrogateescape")
    reader = SegmentReader(client, settings)
    keys = await reader.keyspace()
    from streams.store.partitioning import partition_for

    async def bare() -> object:
        cid = pick()
        return await client.hgetall(keys.customer(partition_for(cid, PARTITIONS), cid))

    async def through_client() -> object:
        profile = await reader.get_customer(pick())
        assert profile is not None
        return profile

    for _ in range(500):  # warm up connections and code paths
        await through_client()
    print(f"get_customer at {rate:,.0f} req/s for {seconds:.0f} s ({n:,} customers):")
    print(summary("baseline: bare HGETALL (redis-py)", await paced(rate, seconds, bare), seconds))
    print(summary("SegmentReader.get_customer", await paced(rate, seconds, through_client), seconds))

    env = dict(os.environ)
    env.update(
        SEGSTREAM_REDIS_URL=url,
        SEGSTREAM_KEY_PREFIX=settings.key_prefix,
        SEGSTREAM_NAMESPACE=str(settings.namespace),
        SEGSTREAM_EVENTS_TOPIC=settings.events_topic,
        SEGSTREAM_TOPIC_PARTITIONS=str(PARTITIONS),
    )
    port = random.randrange(20_000, 60_000)
    server = subprocess.Popen(
        [sys.executable, "-m", "streams.read.api", "--host", "127.0.0.1", "--port", str(port), "--no-auth"],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as http:
            for _ in range(100):
                try:
                    async with http.get(base + "/health") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)

            async def health() -> object:
                async with http.get(base + "/health") as resp:
                    return await resp.read()

            async def over_http() -> object:
                async with http.get(f"{base}/customers/{pick()}") as resp:
                    assert resp.status == 200
                    return await resp.read()

            for _ in range(500):
                await over_http()
            print(summary("baseline: HTTP GET /health", await paced(rate, seconds, health), seconds))
            print(summary("HTTP GET /customers/{id}", await paced(rate, seconds, over_http), seconds))
    finally:
        server.terminate()
        server.wait(10)
        await client.aclose()


async def memory_breakdown(client: aioredis.Redis, keys: KeySpace, n: int) -> None:
    from streams.store.partitioning import partition_for

    cid = f"c{0:09d}"
    p = partition_for(cid, PARTITIONS)
    state = await client.memory_usage(keys.customer(p, cid), samples=0) or 0
    hist = await client.hstrlen(keys.customer(p, cid), history_format.FIELD)
    fields = await client.hlen(keys.customer(p, cid))
    sets = 0
    tag = keys.partition_meta(0)[: -len(":{x:0}:meta") - len(keys.topic)]
    for kind in ("m", "o"):  # bitmaps and ordinal map chunks (streams/store/membership.py)
        async for key in client.scan_iter(match=f"{tag}*:{kind}:*", count=1000):
            sets += await client.memory_usage(key, samples=5) or 0
    print(f"  one customer hash ({fields} fields):  {state:6,} bytes (MEMORY USAGE)")
    print(f"  its history field (in the hash):     {hist:6,} bytes")
    print(f"  membership (bitmaps + ordinal map):  {sets / n:8,.0f} bytes per customer (MEMORY USAGE)")


async def main_async(args: argparse.Namespace) -> None:
    url = redis_url()
    prefix = f"bench-read-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        redis_url=url, key_prefix=prefix, namespace="main", topic_partitions=PARTITIONS, events_topic="events"
    )
    client = async_client(url)
    keys = KeySpace(prefix, "main", "events")
    print(f"machine: {describe()}")
    info = await client.info("server")
    print(f"redis: {info['redis_version']} at {url}")
    old_listpack = None
    if args.hash_listpack_value:  # what-if: a server setting, restored below; the hash format is unchanged
        old_listpack = (await client.config_get("hash-max-listpack-value"))["hash-max-listpack-value"]
        await client.config_set("hash-max-listpack-value", args.hash_listpack_value)
        print(f"what-if: hash-max-listpack-value {old_listpack} -> {args.hash_listpack_value}")
    try:
        await client.memory_purge()
        before = (await client.info("memory"))["used_memory"]
        store = RedisStateStore(client, keys)
        probe = min(args.customers, 10_000)
        seconds = await write_customers(store, probe, args.history_size)
        estimate = ((await client.info("memory"))["used_memory"] - before) / probe * args.customers
        if estimate > args.max_gb * 2**30:
            print(
                f"refusing to write {args.customers:,} customers: ~{estimate / 2**30:.1f} GiB > --max-gb "
                f"{args.max_gb}; measuring with {probe:,}"
            )
            args.customers = probe
        else:
            seconds += await write_customers(store, args.customers - probe, args.history_size, start=probe)
        after = (await client.info("memory"))["used_memory"]
        per = (after - before) / args.customers
        print(
            f"memory: {args.customers:,} customers written through the commit script in {seconds:.1f} s "
            f"({args.customers / seconds:,.0f}/s): {per:,.0f} bytes/customer including indexes and history "
            "(issue #13's goal for this customer: <= 1,500)"
        )
        await memory_breakdown(client, keys, args.customers)
        if args.seconds > 0:
            await latency(url, settings, args.customers, args.rate, args.seconds)
    finally:
        if old_listpack is not None:
            await client.config_set("hash-max-listpack-value", old_listpack)
        removed = 0
        async for key in client.scan_iter(match=f"{prefix}:*", count=5000):
            await client.unlink(key)
            removed += 1
        print(f"cleaned up {removed:,} keys")
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--hash-listpack-value", type=int, default=0, help="what-if server setting (restored)"
    )
    parser.add_argument("--max-gb", type=float, default=6.0, help="refuse a write needing more Redis RAM")
    parser.add_argument("--history-size", type=int, default=Settings().history_size)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
