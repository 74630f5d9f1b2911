"""CPU of one shared Redis round trip (`streams/store/round_trips.py`), this checkout against another.

A script, not a test: `.venv/bin/python benchmarks/bench_round_trip.py [--baseline DIR] [--rounds N]`.
Each round trip carries what a one-customer batch's load sends (the partition meta's HMGET, the customer's
HGETALL, the tombstones' EXISTS) to the configured Redis (`SEGSTREAM_REDIS_URL`, else the local stack),
one after the other from one coroutine. Printed: this process's CPU-µs per round trip (user + system, so
the socket calls count), medians over interleaved rounds, and with `--baseline DIR` (a checkout, e.g.
`git archive <rev> | tar -x -C DIR`) its `RoundTrips` measured in the same rounds, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.machine import describe
from streams.store import round_trips
from streams.store.connection import async_client

COMMANDS = [
    ("HMGET", "bench-round-trip:meta", "fence", "seq", "owner", "offset", "days"),
    ("HGETALL", "bench-round-trip:c:1"),
    ("EXISTS", "bench-round-trip:erased"),
]


def redis_url() -> str:
    url = os.environ.get("SEGSTREAM_REDIS_URL")
    if url:
        return url
    from streams import devstack

    return str(devstack.up().config.redis_url)


def checkout_module(root: Path) -> ModuleType:
    """`streams/store/round_trips.py` of another checkout, loaded beside ours."""
    spec = importlib.util.spec_from_file_location(
        "baseline_round_trips", root / "streams/store/round_trips.py"
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"{root}: no streams/store/round_trips.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def cpu_per_round_trip(module: ModuleType, url: str, count: int) -> float:
    client = async_client(url, False, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)
    trips = module.RoundTrips(client)
    try:
        for _ in range(count // 10):  # warm-up: connections made, code paths hot
            await trips.send(COMMANDS)
        before = os.times()
        for _ in range(count):
            await trips.send(COMMANDS)
        after = os.times()
    finally:
        await client.aclose()
    return (after.user + after.system - before.user - before.system) * 1e6 / count


async def measure(
    variants: dict[str, ModuleType], url: str, rounds: int, count: int
) -> dict[str, list[float]]:
    spent: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, module in variants.items():
            spent[name].append(await cpu_per_round_trip(module, url, count))
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, help="another checkout, measured in the same rounds")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--count", type=int, default=4000, help="round trips per round and variant")
    args = parser.parse_args()
    url = redis_url()
    variants = {"baseline": checkout_module(args.baseline.resolve())} if args.baseline else {}
    variants["this checkout"] = round_trips
    print(f"machine: {describe()}; Redis {url}; {len(COMMANDS)} commands per round trip")
    spent = asyncio.run(measure(variants, url, args.rounds, args.count))
    medians = {name: statistics.median(values) for name, values in spent.items()}
    for name, values in spent.items():
        shown = ", ".join(f"{v:.0f}" for v in values)
        print(f"  {name:<14} {medians[name]:7.1f} CPU-µs per round trip (median of {len(values)}: {shown})")
    if args.baseline:
        print(f"  ratio this checkout / baseline: {medians['this checkout'] / medians['baseline']:.2f}")


if __name__ == "__main__":
    main()
