"""How evenly Kafka partitions spread over Redis Cluster primaries (docs/redis_cluster.md "Slot balance").

A partition's keys share the hash tag `{<topic>:<p>}`, so the partition lives on the primary serving
CRC16("<topic>:<p>") mod 16384; customers spread evenly over partitions (Kafka's murmur2 partitioner), so a
node's share of customers and memory is its share of partitions. For N primaries with the equal slot ranges
`redis-cli --cluster create` gives, and P partitions, this prints the largest node's load over the mean
(the skew `segstream doctor` reports): its median and 95th percentile over many topic names, with the real
CRC16 of the real tags ("crc16") and with uniformly random slots ("random", the textbook model), and the best
an operator can reach by moving slots (ceil(P/N) / (P/N) - 1). A calculation: no service needed.

    .venv/bin/python benchmarks/slot_spread.py [--topics 2000]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from pathlib import Path

from redis.crc import key_slot

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe
from streams.store.slot_balance import skew  # the doctor's own measure

SLOTS = 16384


def layout(nodes: int) -> list[int]:
    """Slot -> node index, the contiguous equal ranges of `redis-cli --cluster create`."""
    owner = [0] * SLOTS
    per = SLOTS / nodes
    first, cursor = 0, 0.0
    for node in range(nodes):
        last = SLOTS - 1 if node == nodes - 1 else round(cursor + per - 1)
        for slot in range(first, last + 1):
            owner[slot] = node
        first, cursor = last + 1, cursor + per
    return owner


def spread(owner: list[int], nodes: int, slots: list[int]) -> float:
    counts = [0] * nodes
    for slot in slots:
        counts[owner[slot]] += 1
    return skew(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", type=int, default=2000, help="topic names (and random draws) per row")
    args = parser.parse_args()
    rng = random.Random(7)
    print(f"machine: {describe()} (a calculation: the figures do not depend on it)")
    print("largest node over the mean (median / p95 over topic names); best: after moving slots")
    print(
        f"{'nodes':>5} {'partitions':>10} {'per node':>8} {'crc16 median':>13} {'crc16 p95':>10}"
        f" {'random median':>14} {'random p95':>11} {'best':>6}"
    )
    for nodes in (3, 6, 12):
        owner = layout(nodes)
        for partitions in sorted({nodes * k for k in (1, 2, 4, 8, 16, 32)} | {16, 32, 64, 128}):
            per_node = partitions / nodes
            real = sorted(
                spread(owner, nodes, [key_slot(f"events-{t}:{p}".encode()) for p in range(partitions)])
                for t in range(args.topics)
            )
            drawn = sorted(
                spread(owner, nodes, [rng.randrange(SLOTS) for _ in range(partitions)])
                for _ in range(args.topics)
            )
            best = math.ceil(partitions / nodes) / (partitions / nodes) - 1
            p95 = int(0.95 * (args.topics - 1))
            print(
                f"{nodes:>5} {partitions:>10} {per_node:>8.1f} {statistics.median(real):>+13.0%}"
                f" {real[p95]:>+10.0%} {statistics.median(drawn):>+14.0%} {drawn[p95]:>+11.0%} {best:>+6.0%}"
            )


if __name__ == "__main__":
    main()
