"""Audience export in constant memory: rows/s and peak RSS of `segstream export` at 100k and 1M members.

    .venv/bin/python benchmarks/bench_export.py [--checkpoints 100000,1000000]

Synthetic fill (not through the worker, which would take minutes per million): a realistic customer (a year
of purchases, emails, a survey) is made once by the pure core, its hash written for every customer with the
store's own mapping (`state_to_mapping`, amounts varied per customer, the event-id window left empty) and
each customer given the next ordinal of its partition and its bit set in its segment's membership bitmap of
every grid (the layout of streams/store/membership.py), with pipelined HSET/SET, under a fresh key prefix.
Then, for each checkpoint N (the fill grows to N first), `segstream export lifecycle active` runs as a
separate process in CSV and in JSON lines to a file; the benchmark prints rows, rows/s and the
process's peak RSS (`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` of that child alone). Every key under
the prefix is removed at the end (SCAN + UNLINK of its own prefix only). Uses SEGSTREAM_REDIS_URL when set,
else the local stack.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe
from segmentation import CustomerState, Definitions, apply, parse_event
from segmentation.state_mapping import is_segment, readable_fields, state_to_mapping
from streams.store import membership
from streams.store.connection import sync_client
from streams.store.keys import KeySpace
from streams.store.partitioning import partition_for

PARTITIONS = 4
TOPIC = "customer-events"
NAMESPACE = "main"
TEMPLATE = "tmpl-customer-00"
CHUNK = 2000


def redis_url() -> str:
    url = os.environ.get("SEGSTREAM_REDIS_URL")
    if url:
        return url
    from streams import devstack

    return str(devstack.up().config.redis_url)


def template() -> CustomerState:
    """A customer with a year of activity, as the worker would store it (lifecycle `active`)."""
    import orjson

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    defs, state = Definitions.default(), CustomerState.new(TEMPLATE)
    events: list[dict[str, object]] = []
    for i in range(12):
        at = t0 + timedelta(days=30 * i)
        events.append({"type": "purchase", "order_id": f"o{i}", "amount": "42.50", "currency": "EUR",
                       "channel": "web", "occurred_at": at.isoformat()})  # fmt: skip
        events.append({"type": "email_open", "occurred_at": (at + timedelta(days=2)).isoformat()})
    events.append(
        {"type": "survey_response", "score": 8, "occurred_at": (t0 + timedelta(days=200)).isoformat()}
    )
    for n, body in enumerate(sorted(events, key=lambda e: str(e["occurred_at"]))):
        raw = {"event_id": f"{TEMPLATE}-e{n:04d}", "customer_id": TEMPLATE, "schema_version": 1, **body}
        state = apply(state, parse_event(orjson.dumps(raw)), defs).state
    return state._replace(recent_ids=b"")


_NEXT: dict[int, int] = {}  # partition -> next ordinal
_BITMAPS: dict[tuple[int, str, str], bytearray] = {}  # the membership bitmaps as written


def fill(client: redis.Redis, keys: KeySpace, start: int, stop: int) -> float:
    """Customers `start`..`stop-1` (ids c000000000...): hash + ordinal + membership of each grid, pipelined
    (the sync client: it packs commands with hiredis, several times faster than the asyncio one for 64-field
    HSETs); the bitmaps are built here and written whole at the end."""
    base = template()
    segments = {k: v for k, v in readable_fields(base).items() if is_segment(k) and v}  # not_member too
    began = time.perf_counter()
    for low in range(start, stop, CHUNK):
        pipe = client.pipeline(transaction=False)
        names: dict[tuple[int, int], dict[Any, Any]] = {}
        for i in range(low, min(low + CHUNK, stop)):
            cid = f"c{i:09d}"
            p = partition_for(cid, PARTITIONS)
            ordinal = _NEXT.get(p, 0)
            _NEXT[p] = ordinal + 1
            mapping = state_to_mapping(base._replace(customer_id=cid, gross_minor=51000 + i % 9973))
            row: dict[Any, Any] = {k: v.encode("utf-8", "surrogateescape") for k, v in mapping.items()}
            row["_offset"] = f"{p}:{i}"
            row["_o"] = str(ordinal)
            pipe.hset(keys.customer(p, cid), mapping=row)
            chunk, field = membership.chunk_of(ordinal)
            names.setdefault((p, chunk), {})[field] = cid
            for grid, segment in segments.items():
                bits = _BITMAPS.setdefault((p, grid, segment), bytearray())
                if len(bits) <= ordinal // 8:
                    bits.extend(bytes(ordinal // 8 + 1 - len(bits)))
                bits[ordinal // 8] |= 0x80 >> (ordinal % 8)
        for (p, chunk), ids in names.items():
            pipe.hset(keys.ordinals(p, chunk), mapping=ids)
        pipe.execute()
    pipe = client.pipeline(transaction=False)
    for (p, grid, segment), bits in _BITMAPS.items():
        pipe.set(keys.members(p, grid, segment), bytes(bits))
    for p, ordinal in _NEXT.items():
        pipe.hset(keys.partition_meta(p), "ordinals", ordinal)
    pipe.execute()
    return time.perf_counter() - began


def export(env: dict[str, str], fmt: str, output: Path) -> tuple[int, float, float]:
    """(rows, seconds, peak RSS MiB) of one `segstream export` process."""
    code = (
        "import resource, sys\n"
        "from streams.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print('maxrss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    args = ["export", "lifecycle", "active", "--format", fmt, "--output", str(output)]
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"export failed ({done.returncode}): {done.stderr.strip()}")
    rss_kib = int(done.stderr.split("maxrss_kib", 1)[1].split()[0])
    with output.open("rb") as f:
        rows = sum(1 for _ in f) - (1 if fmt == "csv" else 0)
    return rows, seconds, rss_kib / 1024


def cleanup(client: redis.Redis, prefix: str) -> int:
    """UNLINK every key of this run's own prefix (SCAN, never KEYS; nothing else is touched)."""
    removed = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}:*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            removed += int(client.unlink(*batch))
            batch = []
    if batch:
        removed += int(client.unlink(*batch))
    return removed


def run(args: argparse.Namespace) -> None:
    url = redis_url()
    prefix = f"bench-export-{uuid.uuid4().hex[:8]}"
    keys = KeySpace(prefix, NAMESPACE, TOPIC)
    client = sync_client(url)
    env = dict(os.environ, SEGSTREAM_REDIS_URL=url, SEGSTREAM_KEY_PREFIX=prefix,
               SEGSTREAM_NAMESPACE=NAMESPACE, SEGSTREAM_EVENTS_TOPIC=TOPIC,
               SEGSTREAM_TOPIC_PARTITIONS=str(PARTITIONS))  # fmt: skip
    print(f"machine: {describe()}")
    print(f"redis: {url}, prefix {prefix} (synthetic fill: HSET, ordinals, bitmaps: the store's layout)")
    checkpoints = sorted(int(n) for n in args.checkpoints.split(","))
    filled = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in checkpoints:
                seconds = fill(client, keys, filled, n)
                print(f"filled {n - filled:,} customers in {seconds:.1f} s (total {n:,})", flush=True)
                filled = n
                for fmt in ("csv", "jsonl"):
                    output = Path(tmp) / f"export.{fmt}"
                    rows, took, rss = export(env, fmt, output)
                    size = output.stat().st_size / 1048576
                    print(
                        f"  {fmt:<5} {rows:>9,} rows  {rows / took:>9,.0f} rows/s  {took:6.1f} s"
                        f"  peak RSS {rss:6.1f} MiB  file {size:7.1f} MiB",
                        flush=True,
                    )
                    if rows != n:
                        raise SystemExit(f"expected {n} rows, got {rows}")
                    output.unlink()
    finally:
        removed = cleanup(client, prefix)
        print(f"cleanup: {removed:,} keys removed under {prefix}:")
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default="100000,1000000", help="member counts to export at")
    args = parser.parse_args()
    run(args)


if __name__ == "__main__":
    main()
