"""Redis CPU of the commit script (streams/store/commit.lua) per counter field and per customer write.

    .venv/bin/python benchmarks/bench_commit_script.py [--fields 1000,4000] [--customers 1000,5000]

Why: an order-history import spends ~55 CPU-µs per event in Redis, nearly all inside this script, and most
of that is per counter field (~7 a transition-heavy event) and per customer write; this separates the two.
Each case runs the script `--rounds` times on its own keys (one HINCRBY op of N fields, half of them new; or
N customers of 12 fields) and reads the script's time from `INFO commandstats` (`cmdstat_evalsha`, which
includes the commands it calls), so the client's encoding and the network are not in it. Uses
`SEGSTREAM_REDIS_URL`, else the local stack; the keys are deleted after.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from benchmarks.machine import describe
from benchmarks.replay_child import redis_url


def _script_us(client: redis.Redis, sha: str, keys: list[str], runs: list[list[str | int]]) -> float:
    """µs of script time over `runs` (one argument list each), from commandstats."""
    client.config_resetstat()
    for args in runs:
        client.evalsha(sha, len(keys), *keys, *args)
    stats = client.info("commandstats")["cmdstat_evalsha"]
    return float(stats["usec"])


def counters(client: redis.Redis, sha: str, tag: str, n: int, rounds: int) -> float:
    """µs per counter field: one HINCRBY op of `n` fields, half of them already in the hash."""
    meta, due, key = f"{{{tag}}}:meta", f"{{{tag}}}:due", f"{{{tag}}}:d"
    client.hset(meta, mapping={"fence": 1, "seq": 0})
    client.hset(key, mapping={f"s{i % 7}:c:{i}": 1 for i in range(0, n, 2)})
    packed = "\0".join(x for i in range(n) for x in (f"s{i % 7}:c:{i}", str(i % 5 + 1)))
    runs: list[list[str | int]] = [
        [f"1:{seq}", "", "", "0:0", "", "HINCRBY*", 3, 2 * n, packed] for seq in range(1, rounds + 1)
    ]
    spent = _script_us(client, sha, [meta, due, key], runs)
    client.delete(meta, due, key)
    return spent / rounds / n


def customers(client: redis.Redis, sha: str, tag: str, n: int, rounds: int, fields: int = 12) -> float:
    """µs per customer write of `fields` fields (10 short, 2 of 200 bytes, like a state and a history)."""
    meta, due = f"{{{tag}}}:meta", f"{{{tag}}}:due"
    client.hset(meta, mapping={"fence": 1, "seq": 0})
    keys = [f"{{{tag}}}:c:{i}" for i in range(n)]
    parts: list[str] = []
    for i in range(n):
        parts += [str(i), "S", str(1_700_000_000_000_000 + i), str(fields), "0"]
        for f in range(fields):
            parts += [f"field{f}", "x" * (30 if f < fields - 2 else 200)]
    packed = "\0".join(parts)
    runs: list[list[str | int]] = [
        [f"1:{seq}", "", "", f"{n}:{len(parts)}", packed] for seq in range(1, rounds + 1)
    ]
    unordered = f"{{{tag}}}:q:_"  # the due chunk of customers without ordinal: declared last (commit.lua)
    spent = _script_us(client, sha, [meta, due, *keys, unordered], runs)
    client.delete(meta, due, *keys, unordered)
    return spent / rounds / n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fields", default="1000,4000", help="counter fields in one op, comma-separated")
    parser.add_argument("--customers", default="1000,5000", help="customer writes in one commit")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    client = redis.Redis.from_url(redis_url())
    sha = client.script_load(resources.files("streams.store").joinpath("commit.lua").read_text())
    print(f"machine: {describe()}; Redis {client.info('server')['redis_version']}")
    tag = f"bench-commit-{uuid.uuid4().hex[:8]}"
    for n in (int(x) for x in args.fields.split(",")):
        us = counters(client, sha, f"{tag}:f{n}", n, args.rounds)
        print(f"  one HINCRBY op of {n:>6,} fields: {us:6.2f} µs of script time per field")
    for n in (int(x) for x in args.customers.split(",")):
        us = customers(client, sha, f"{tag}:c{n}", n, args.rounds)
        print(f"  {n:>6,} customer writes of 12 fields:  {us:6.2f} µs of script time per customer")


if __name__ == "__main__":
    main()
