"""CPU per record of finding a key's partition (Kafka's murmur2 partitioner), by population size.

    .venv/bin/python benchmarks/bench_partitioner.py [--populations 1000,100000,1000000] [--records 1000000]
        [--baseline DIR] [--rounds 3]

The worker hashes every record's key (`batch.decode` checks the record is in its customer's partition) and
every transition's (`publish`); a file replay hashes every line's customer id. Here a stream of `--records`
keys drawn at random (seeded) from a population of customers goes through `partition_of_key`, as a worker
sees them; CPU-µs per record, the best of 3 passes per round, medians over the rounds. `--baseline DIR`
(`git archive <commit> | tar -x -C DIR`, its compiled core built there when it has one) runs the same stream
with that checkout's code in alternate child processes. Until 7 December 2026 the partitioner was
kafka-python's pure-Python murmur2 (~2.6 µs a key) behind a memo of 100,000 keys, so the figure depended on
whether the population fit in the memo.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from benchmarks.machine import describe  # noqa: E402


def child(source: Path | None, population: int, records: int) -> None:
    """One population's stream with the partitioner of `source` (a checkout; None: this one); prints JSON."""
    if source is not None:
        from benchmarks.replay_child import use_checkout

        use_checkout(source)
    from streams.store.partitioning import partition_of_key

    rng = random.Random(7)
    keys = [f"customer-{n:08d}".encode() for n in range(population)]
    stream = [keys[rng.randrange(population)] for _ in range(records)]
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for key in stream:
            partition_of_key(key, 12)
        best = min(best, time.process_time() - started)
    print(json.dumps({"us": best / records * 1e6}))


def measure(source: Path | None, population: int, records: int) -> float:
    argv = [sys.executable, __file__, "--child", "--population", str(population), "--records", str(records)]
    if source is not None:
        argv += ["--source", str(source)]
    done = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=ROOT)
    return float(json.loads(done.stdout.splitlines()[-1])["us"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--populations", default="1000,100000,1000000")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=Path, help="another checkout (before)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--population", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.source, args.population, args.records)
        return
    print(f"machine: {describe()}")
    print(f"{'population':>12} {'before us/record':>17} {'after us/record':>16} {'after/before':>13}")
    for population in (int(n) for n in args.populations.split(",")):
        before: list[float] = []
        after: list[float] = []
        for _ in range(args.rounds):
            if args.baseline is not None:
                before.append(measure(args.baseline.resolve(), population, args.records))
            after.append(measure(None, population, args.records))
        new = statistics.median(after)
        if before:
            old = statistics.median(before)
            print(f"{population:>12,} {old:>17.3f} {new:>16.3f} {new / old:>12.2f}x")
        else:
            print(f"{population:>12,} {'':>17} {new:>16.3f}")


if __name__ == "__main__":
    main()
