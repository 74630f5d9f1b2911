"""What asking the nodes costs a partition walk on a Redis Cluster (streams/store/slot_walk.py).

`scan_slot` asks the serving node for the slot's state (CLUSTER NODES) before and after its SCAN, where it
used to SCAN the node of the client's map only. This fills one private partition tag with `--keys` hashes,
then times, alternating, the bare SCAN of the serving node and `scan_slot`, and prints their medians and
ratio; then half the keys are MIGRATEd to another primary (the slot left MIGRATING / IMPORTING) and the
migrating walk (source, then target, deduplicated) is timed too. The slot and the keys are put back and
deleted at the end, also on failure.

    .venv/bin/python benchmarks/bench_slot_walk.py [--url redis+cluster://127.0.0.1:7000] [--keys 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

from redis.crc import key_slot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe
from streams.store.connection import async_client, scan_slot
from tests.integration.slot_migration import command, move_slot, owner, primaries


async def timed_walks(url: str, pattern: str, slot_key: str, rounds: int) -> tuple[float, float]:
    """Median seconds of the bare SCAN of the serving node and of scan_slot, alternated (each first in
    every other round); (bare, walk)."""
    client: Any = async_client(url)
    try:
        await client.initialize()
        node = client.get_node_from_key(slot_key)
        times: dict[str, list[float]] = {"bare": [], "walk": []}
        found: dict[str, int] = {}

        def bare() -> AsyncIterator[Any]:
            return cast(AsyncIterator[Any], client.scan_iter(match=pattern, count=1000, target_nodes=node))

        walks: dict[str, Callable[[], AsyncIterator[Any]]] = {
            "bare": bare,
            "walk": lambda: scan_slot(client, pattern, slot_key),
        }
        for r in range(rounds):
            for name in ("bare", "walk") if r % 2 == 0 else ("walk", "bare"):
                started = time.perf_counter()
                found[name] = sum([1 async for _ in walks[name]()])
                times[name].append(time.perf_counter() - started)
        print(f"  keys found: walk {found['walk']}, bare SCAN of the serving node {found['bare']}")
        return statistics.median(times["bare"]), statistics.median(times["walk"])
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis+cluster://127.0.0.1:7000")
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    host, port = args.url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    nodes = primaries(host, int(port))
    tag = f"bench:{uuid.uuid4().hex[:12]}:walk:{{bench-walk-events:0}}"
    slot_key, pattern = f"{tag}:meta", f"{tag}:c:*"
    slot = key_slot(slot_key.encode())
    source = owner(nodes, slot)
    target = nodes[(nodes.index(source) + 1) % len(nodes)]
    names = [f"{tag}:c:{i:07d}" for i in range(args.keys)]
    src, dst = source.client(), target.client()
    print(f"machine: {describe()}")
    print(f"slot {slot} on {source.name}, {args.keys} keys, medians of {args.rounds}")
    try:
        for i in range(0, len(names), 1000):
            with src.pipeline(transaction=False) as pipe:
                for name in names[i : i + 1000]:
                    pipe.hset(name, "clock", "1")
                pipe.execute()
        bare, walk = asyncio.run(timed_walks(args.url, pattern, slot_key, args.rounds))
        print(
            f"stable slot: bare SCAN {bare * 1000:.1f} ms, scan_slot {walk * 1000:.1f} ms, {walk / bare:.2f}x"
        )
        command(dst, "CLUSTER SETSLOT", slot, "IMPORTING", source.node_id)
        command(src, "CLUSTER SETSLOT", slot, "MIGRATING", target.node_id)
        half = names[::2]
        for i in range(0, len(half), 1000):
            command(src, "MIGRATE", target.host, target.port, "", 0, 10_000, "KEYS", *half[i : i + 1000])
        bare_m, migrating = asyncio.run(timed_walks(args.url, pattern, slot_key, args.rounds))
        print(f"half migrated: bare SCAN {bare_m * 1e3:.1f} ms (the source's keys only), scan_slot")
        print(f"  {migrating * 1e3:.1f} ms, {migrating / bare:.2f}x the stable bare SCAN")
    finally:
        move_slot(nodes, slot, target)
        move_slot(nodes, slot, source)
        for i in range(0, len(names), 1000):
            src.delete(*names[i : i + 1000])
        src.close()
        dst.close()


if __name__ == "__main__":
    main()
