"""Where Redis bytes per customer go after an import: per key kind, per customer-hash field, with encodings.

    .venv/bin/python benchmarks/bytes_per_customer.py [--customers 23500] [--partitions 4] [--sample 2000]
        [--source CHECKOUT] [--json OUT]

Replays the order-history sample (`bench_replay.py --profile order-history`'s file: same seed, 548 days)
into a throw-away prefix with the code of this checkout (or of `--source`, another checkout, its own
compiled core when it has one), then, before dropping the prefix:

- **per key kind** (`benchmarks/footprint.py`'s split: `c:<id>` customer hashes, `d:`, `f:`, `t:` day
  counters, `k:` KPI counters, `m:` bitmaps, `o:` ordinal chunks, `due`, ...): keys, MEMORY USAGE (SAMPLES
  0, every element) per customer, and the Redis encodings met (OBJECT ENCODING), the number of elements
  (HLEN/ZCARD/STRLEN) and the longest field name and value of the hash kinds;
- **the customer hash per field class** (`state`, `history`, `<grid>`, `audience:*`, figures,
  `_kpi`, `_o`, `_offset`, other `_` fields, ...) over `--sample` customer hashes: the text bytes of names
  and values, and the *exact* share of MEMORY USAGE: the hash is copied to a scratch key without that class
  and the difference measured (so listpack headers and allocator size classes are counted where they fall);
  plus how many customer hashes are listpacks and why the others are not (a field count above
  `hash-max-listpack-entries` or a value above `hash-max-listpack-value`);
- **INFO used_memory** freed by dropping the prefix, as a cross-check of the MEMORY USAGE sum.

Everything is divided by the customers owning a key (the file's customers). Uses SEGSTREAM_REDIS_URL when
set, else the local stack. The run's prefix is dropped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.footprint import customer_ids, drop, kind_of, measure, used_memory
from segmentation.state_mapping import GRID_FIELDS

_SCRATCH_CHUNK = 200
_KINDS_WITH_ELEMENTS = {"hash": "HLEN", "zset": "ZCARD", "string": "STRLEN", "list": "LLEN", "set": "SCARD"}


def field_class(name: str) -> str:
    """The class of a customer-hash field: `audience:*`, `<grid>`, `_kpi`, `_o`... (one per name
    for the store's and the readable figure fields)."""
    if name.startswith(("segment:audience:", "audience:")):  # format 2 and format 3 (--source)
        return "audience:*"
    if name.startswith("segment:") or name in GRID_FIELDS:
        return "<grid>"
    if name.startswith("why"):
        return "why*"
    return name


def _as_int(data: bytes) -> int | None:
    """The integer Redis stores `data` as in a listpack (its lpStringToInt64: no sign-only, no leading zero,
    no spaces, at most 20 characters), else None."""
    if not data or len(data) > 20 or not re.fullmatch(rb"-?(0|[1-9][0-9]*)", data) or data == b"-0":
        return None
    value = int(data)
    return value if -(2**63) <= value < 2**63 else None


def listpack_bytes(data: bytes) -> int:
    """Bytes one listpack element holding `data` takes (encoding byte(s) + content + back length), as in
    Redis 7's listpack.c: the additive share of a field's name or value in a listpack hash."""
    value = _as_int(data)
    if value is None:
        size = len(data) + (1 if len(data) < 64 else 2 if len(data) < 4096 else 5)
    elif 0 <= value <= 127:
        size = 1
    elif -4096 <= value <= 4095:
        size = 2
    else:
        size = 1 + next(n for n in (2, 3, 4, 8) if -(2 ** (8 * n - 1)) <= value < 2 ** (8 * n - 1))
    return size + (1 if size <= 127 else 2 if size < 16383 else 3)


def write_file(customers: int, path: Path) -> int:
    from streams.sample import generator as sample

    spec = sample.SampleSpec(customers=customers, days=548, seed=11, profile="order-history")
    return int(sample.write_jsonl(spec, path))


def replay_into(path: Path, url: str, prefix: str, partitions: int) -> dict[str, Any]:
    from segmentation import Definitions
    from streams.replay.rebuild import replay
    from streams.replay.sources import FileSource
    from streams.settings import Settings

    try:
        from streams.store.connection import async_client
    except ImportError:  # an older checkout: single server only
        import redis.asyncio as aioredis

        async_client = aioredis.Redis.from_url  # type: ignore[assignment]
    settings = Settings(redis_url=url, key_prefix=prefix, topic_partitions=partitions, namespace="bench")

    async def run() -> dict[str, Any]:
        client = async_client(url)
        try:
            summary = await replay(
                settings,
                Definitions.default(),
                client,
                FileSource(path, partitions),
                "bench",
                source_name=str(path),
                rejects_path=path.with_suffix(f".{prefix}.rejects.jsonl"),
                show_progress=False,
            )
        finally:
            await client.aclose()
        return {
            "events": summary.events,
            "transitions": sum(summary.transitions.values()),
            "customers": summary.customers,
        }

    return asyncio.run(run())


def kinds_detail(client: Any, prefix: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Per key kind: encodings met, elements, longest field name/value (hash kinds, on up to 50 keys)."""
    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"encodings": Counter(), "elements": 0, "keys": 0, "longest_name": 0, "longest_value": 0}
    )
    keys = list(client.scan_iter(match=f"{prefix}:*", count=5000))
    for i in range(0, len(keys), 1000):
        chunk = keys[i : i + 1000]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.type(key)
            pipe.object("encoding", key)
        replies = pipe.execute()
        types = [replies[j].decode() for j in range(0, len(replies), 2)]
        encodings = [(replies[j] or b"?").decode() for j in range(1, len(replies), 2)]
        pipe = client.pipeline(transaction=False)
        for key, kind in zip(chunk, types, strict=True):
            pipe.execute_command(_KINDS_WITH_ELEMENTS.get(kind, "STRLEN"), key)
        counts = pipe.execute()
        for key, kind, encoding, count in zip(chunk, types, encodings, counts, strict=True):
            name, _ = kind_of(key.decode("utf-8", "replace"), prefix, ids)
            row = out[name]
            row["encodings"][f"{kind}/{encoding}"] += 1
            row["elements"] += int(count or 0)
            row["keys"] += 1
            if kind == "hash" and not name.startswith("c:") and row["keys"] <= 50:
                for field, value in client.hgetall(key).items():
                    row["longest_name"] = max(row["longest_name"], len(field))
                    row["longest_value"] = max(row["longest_value"], len(value))
    return out


def customer_hashes(client: Any, prefix: str, ids: set[str], sample: int, seed: int = 7) -> dict[str, Any]:
    """Encodings of every customer hash, and per field class (names + values, exact MEMORY USAGE share) on
    `sample` of them."""
    keys = [
        key
        for key in client.scan_iter(match=f"{prefix}:*:c:*", count=5000)
        if kind_of(key.decode("utf-8", "replace"), prefix, ids)[0] == "c:<id>"
    ]
    encodings: Counter[str] = Counter()
    for i in range(0, len(keys), 1000):
        pipe = client.pipeline(transaction=False)
        for key in keys[i : i + 1000]:
            pipe.object("encoding", key)
        encodings.update((e or b"?").decode() for e in pipe.execute())
    config = client.config_get("hash-max-listpack-*")
    max_entries = int(config.get("hash-max-listpack-entries", 128))
    max_value = int(config.get("hash-max-listpack-value", 64))
    chosen = random.Random(seed).sample(keys, min(sample, len(keys)))
    # class -> [hashes with it, name text, value text, listpack bytes of names and values]
    text: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    share: Counter[str] = Counter()
    usage = 0
    over_entries = over_value = 0
    long_fields: Counter[str] = Counter()
    scratch = f"{prefix}:scratch:{uuid.uuid4().hex[:8]}"
    fields_total = 0
    for i in range(0, len(chosen), _SCRATCH_CHUNK):
        chunk = chosen[i : i + _SCRATCH_CHUNK]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.hgetall(key)
            pipe.execute_command("MEMORY USAGE", key, "SAMPLES", 0)
        replies = pipe.execute()
        for j in range(len(chunk)):
            mapping: dict[bytes, bytes] = replies[2 * j]
            size = int(replies[2 * j + 1] or 0)
            usage += size
            fields_total += len(mapping)
            if len(mapping) > max_entries:
                over_entries += 1
            if any(len(k) > max_value or len(v) > max_value for k, v in mapping.items()):
                over_value += 1
            classes: dict[str, dict[bytes, bytes]] = defaultdict(dict)
            for field, value in mapping.items():
                cls = field_class(field.decode("utf-8", "replace"))
                classes[cls][field] = value
                if len(value) > max_value or len(field) > max_value:
                    long_fields[cls] += 1
            copies = client.pipeline(transaction=False)
            copies.delete(scratch)
            copies.hset(scratch, mapping=mapping)
            copies.execute_command("MEMORY USAGE", scratch, "SAMPLES", 0)
            copies.delete(scratch)
            size = int(copies.execute()[2] or 0)  # a fresh copy: no slack left by earlier updates
            for cls, part in classes.items():
                row = text[cls]
                row[0] += 1
                row[1] += sum(len(k) for k in part)
                row[2] += sum(len(v) for v in part.values())
                row[3] += sum(listpack_bytes(k) + listpack_bytes(v) for k, v in part.items())
                rest = {k: v for k, v in mapping.items() if k not in part}
                if not rest:
                    share[cls] += size
                    continue
                # the same encoding as the original: a copy shrinks into a listpack only if Redis would
                pipe2 = client.pipeline(transaction=False)
                pipe2.delete(scratch)
                pipe2.hset(scratch, mapping=rest)
                pipe2.execute_command("MEMORY USAGE", scratch, "SAMPLES", 0)
                pipe2.delete(scratch)
                without = int(pipe2.execute()[2] or 0)
                share[cls] += size - without
    n = max(1, len(chosen))
    return {
        "hashes": len(keys),
        "encodings": dict(encodings),
        "hash-max-listpack-entries": max_entries,
        "hash-max-listpack-value": max_value,
        "sample": len(chosen),
        "mean_usage": usage / n,
        "mean_fields": fields_total / n,
        "over_entries": over_entries,
        "over_value": over_value,
        "long_fields": dict(long_fields),
        "classes": {
            cls: {
                "in_hashes": row[0] / n,
                "name_bytes": row[1] / n,
                "value_bytes": row[2] / n,
                "listpack_bytes": row[3] / n,
                "freed_if_removed": share[cls] / n,
            }
            for cls, row in text.items()
        },
    }


def month_split(
    client: Any, prefix: str, ids: set[str], kinds: tuple[str, ...] = ("d", "f", "t")
) -> dict[str, dict[str, Any]]:
    """What the day counters (`d:`, `f:`, `t:` hashes, one per grid and partition, a field per segment and
    day) would cost as one hash per grid, partition and *month* (or half-month: days 1-15, 16-31; or ISO week,
    the field named by the weekday 1-7) with the month left out of the field names: each copied to scratch
    keys, measured with MEMORY USAGE and deleted
    (a projection, nothing kept)."""
    out: dict[str, dict[str, Any]] = {}
    day = re.compile(rb"^(.*:)(\d{4}-\d{2})-(\d{2})$")
    scratch = f"{prefix}:scratch-month"
    for kind in kinds:
        now = 0
        # bytes, keys, listpacks, largest
        split = {"month": [0, 0, 0, 0], "half-month": [0, 0, 0, 0], "week": [0, 0, 0, 0]}
        for key in client.scan_iter(match=f"{prefix}:*:{kind}:*", count=5000):
            if kind_of(key.decode("utf-8", "replace"), prefix, ids)[0] != kind:
                continue
            now += int(client.execute_command("MEMORY USAGE", key, "SAMPLES", 0) or 0)
            groups: dict[str, dict[bytes, dict[bytes, bytes]]] = {name: defaultdict(dict) for name in split}
            for field, value in client.hgetall(key).items():
                match = day.match(field)
                if match is None:  # not a day field: kept as it is, in a key of its own
                    for grouped in groups.values():
                        grouped[b"-"][field] = value
                    continue
                name, month, dd = match.group(1) + match.group(3), match.group(2), match.group(3)
                groups["month"][month][name] = value
                groups["half-month"][month + (b"a" if int(dd) <= 15 else b"b")][name] = value
                year, week, weekday = date.fromisoformat((month + b"-" + dd).decode()).isocalendar()
                groups["week"][f"{year}-W{week:02d}".encode()][match.group(1) + b"%d" % weekday] = value
            for how, grouped in groups.items():
                row = split[how]
                for fields in grouped.values():
                    client.delete(scratch)
                    client.hset(scratch, mapping=fields)
                    row[0] += int(client.execute_command("MEMORY USAGE", scratch, "SAMPLES", 0) or 0)
                    row[2] += client.object("encoding", scratch) == b"listpack"
                    client.delete(scratch)
                    row[1] += 1
                    row[3] = max(row[3], len(fields))
        out[kind] = {"now": now} | {
            how: {"bytes": row[0], "keys": row[1], "listpacks": row[2], "largest": row[3]}
            for how, row in split.items()
        }
    return out


def report(result: dict[str, Any]) -> list[str]:
    customers = max(1, result["footprint"]["customers"])
    fp = result["footprint"]
    total = (fp["customer_bytes"] + fp["aggregate_bytes"]) / customers
    own, shared = fp["customer_bytes"] / customers, fp["aggregate_bytes"] / customers
    lines = [
        f"{result['events']:,} events, {result['transitions']:,} transitions, {customers:,} customers "
        f"({result['partitions']} partitions)",
        f"MEMORY USAGE, all keys: {total:,.0f} bytes/customer (customer keys "
        f"{own:,.0f}, partition aggregates {shared:,.0f});"
        f" used_memory freed by dropping them: {fp['used_memory_delta'] / customers:,.0f}",
        "",
        f"{'kind':14} {'keys':>8} {'bytes/cust':>10} {'elements':>10}  encodings;"
        " longest hash field name/value",
    ]
    kinds = sorted(fp["kinds"].items(), key=lambda item: -item[1][1])
    for kind, (keys, size) in kinds:
        d = result["kinds"].get(kind, {})
        enc = ", ".join(f"{e} {n:,}" for e, n in sorted(d.get("encodings", {}).items()))
        longest = f"; {d['longest_name']}/{d['longest_value']}" if d.get("longest_name") else ""
        lines.append(
            f"{kind:14} {keys:>8,} {size / customers:>10,.1f} {d.get('elements', 0):>10,}  {enc}{longest}"
        )
    h = result["hashes"]
    lines += [
        "",
        f"customer hashes: {h['hashes']:,}, encodings {h['encodings']} (hash-max-listpack-entries "
        f"{h['hash-max-listpack-entries']}, -value {h['hash-max-listpack-value']}); "
        f"sample of {h['sample']:,}: "
        f"mean MEMORY USAGE {h['mean_usage']:,.0f} bytes, {h['mean_fields']:.1f} fields; "
        f"{h['over_entries']} over the entry limit, {h['over_value']} with a name or value over the "
        "value limit "
        f"{h['long_fields']}",
        "per customer hash (mean over the sample); listpack bytes are additive, freed-if-removed is MEMORY "
        "USAGE of a fresh copy minus that of a copy without the class (allocator size classes: not additive)",
        f"{'field class':24} {'in hashes':>9} {'name text':>9} {'value text':>10} {'listpack bytes':>14}"
        f" {'freed if removed':>16}",
    ]
    for cls, row in sorted(h["classes"].items(), key=lambda item: -item[1]["listpack_bytes"]):
        lines.append(
            f"{cls:24} {row['in_hashes']:>9.2f} {row['name_bytes']:>9.1f} {row['value_bytes']:>10.1f}"
            f" {row['listpack_bytes']:>14.1f} {row['freed_if_removed']:>16.1f}"
        )
    rest = h["mean_usage"] - sum(row["listpack_bytes"] for row in h["classes"].values())
    lines.append(f"{'(key, object, listpack header, allocator rounding)':51} {rest:>14.1f}")
    if result.get("month_split"):
        lines += [
            "",
            "day counters split per month, half-month or week (projection: scratch copies measured, then "
            "deleted):",
        ]
        for kind, row in result["month_split"].items():
            for how in ("month", "half-month", "week"):
                split = row[how]
                lines.append(
                    f"  {kind} per {how:10}: {row['now'] / customers:,.0f} -> "
                    f"{split['bytes'] / customers:,.0f} bytes/customer ({split['keys']:,} keys, "
                    f"{split['listpacks']:,} listpacks, largest {split['largest']:,} fields)"
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=23_500)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--sample", type=int, default=2000, help="customer hashes split per field class")
    parser.add_argument("--source", type=Path, help="another checkout to replay with (e.g. a baseline)")
    parser.add_argument("--json", type=Path, help="write the figures there too")
    parser.add_argument(
        "--no-projection", action="store_true", help="skip the projection of day counters split per month"
    )
    args = parser.parse_args()
    if args.source is not None:
        sys.path.insert(0, str(args.source.resolve()))
        from benchmarks.replay_child import _baseline_core

        _baseline_core(args.source.resolve())
    from benchmarks.replay_child import redis_url
    from streams.store.connection import sync_client

    url = redis_url()
    prefix = f"bench-bytes-{uuid.uuid4().hex[:8]}"
    client = sync_client(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "orders.jsonl.gz"
            lines = write_file(args.customers, path)
            ids = customer_ids(path)
            started = time.monotonic()
            result: dict[str, Any] = replay_into(path, url, prefix, args.partitions)
            print(f"{lines:,} lines replayed in {time.monotonic() - started:.0f} s", file=sys.stderr)
        result["partitions"] = args.partitions
        result["used_memory_after"] = used_memory(client)
        footprint = measure(client, prefix, ids)
        result["kinds"] = kinds_detail(client, prefix, ids)
        result["hashes"] = customer_hashes(client, prefix, ids, args.sample)
        if not args.no_projection:
            result["month_split"] = month_split(client, prefix, ids)
        dropped = drop(client, prefix, footprint)
        assert dropped is not None
        result["footprint"] = dropped.to_json()
    finally:
        drop(client, prefix)
        client.close()
    print("\n".join(report(result)))
    if args.json:
        args.json.write_text(json.dumps(result, default=lambda o: dict(o), indent=1) + "\n")


if __name__ == "__main__":
    main()
