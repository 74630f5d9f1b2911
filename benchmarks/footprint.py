"""Redis memory of one benchmark run's keys, per customer, measured without knowing the storage layout.

Why no layout knowledge: the representation changes (issue #13 replaces history lists, membership sets and
hash fields), and a figure that depends on key names would silently stop counting what moved. So every key
under the run's prefix is found with SCAN and sized with MEMORY USAGE (SAMPLES 0: every element, exact), and
split in two: *per-customer* keys (a name holding a customer id as one of its `:`/`{}`-separated parts) and
*aggregates* (the rest: per-partition counters, indexes, membership structures). Both are divided by the
customers that own at least one key. As a cross-check, `drop` deletes the keys (DEL, freed at once) and
reports how much INFO `used_memory` fell meanwhile: allocator overhead included, and only the other clients'
writes during that second as noise (a delta across the whole run, on a Redis shared with other work, is
not usable). The MEMORY USAGE sum is the figure; the freed bytes say whether it misses something.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Footprint", "customer_ids", "drop", "kind_of", "measure", "used_memory"]

_PARTS = re.compile(r"[:{}]")
_CHUNK = 1000


def customer_ids(path: Path) -> set[str]:
    """Distinct customer ids of an event file (JSONL, .gz too); malformed lines are skipped."""
    ids: set[str] = set()
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as lines:
        for line in lines:
            try:
                value = orjson.loads(line).get("customer_id")
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if isinstance(value, str):
                ids.add(value)
    return ids


def kind_of(key: str, prefix: str, ids: set[str] | frozenset[str]) -> tuple[str, str | None]:
    """(kind, customer id or None): the kind is the first name part after the partition tag (or after the
    prefix when there is none), with `:<id>` appended for a per-customer key, e.g. `c:<id>`, `h:<id>`, `m`."""
    rest = key[len(prefix) + 1 :] if key.startswith(prefix + ":") else key
    parts = [part for part in _PARTS.split(rest) if part]
    owner = next((part for part in parts if part in ids), None)
    tail = rest.rsplit("}", 1)[1] if "}" in rest else rest.split(":", 1)[-1]
    head = next((part for part in tail.split(":") if part), "?")
    if owner is not None:
        return (f"{head}:<id>" if head != owner else "<id>"), owner
    return head, None


@dataclass(frozen=True)
class Footprint:
    """MEMORY USAGE of a prefix's keys, split per customer and aggregates (see the module docstring)."""

    customers: int
    customer_keys: int
    customer_bytes: int
    aggregate_keys: int
    aggregate_bytes: int
    used_memory_delta: int | None = None  # used_memory freed by deleting the keys (see `drop`)
    kinds: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (keys, bytes)

    @property
    def per_customer(self) -> float:
        return (self.customer_bytes + self.aggregate_bytes) / max(1, self.customers)

    def figures(self) -> dict[str, float]:
        """Bytes per customer: total, per-customer keys, aggregates, used_memory delta (NaN when unknown)."""
        n = max(1, self.customers)
        used = self.used_memory_delta / n if self.used_memory_delta is not None else float("nan")
        return {
            "bytes/customer": self.per_customer,
            "  per-customer keys": self.customer_bytes / n,
            "  partition aggregates": self.aggregate_bytes / n,
            "  used_memory freed by drop": used,
        }

    def lines(self, top: int = 8) -> list[str]:
        n = max(1, self.customers)
        out = [
            f"  Redis memory {self.per_customer:,.0f} bytes/customer ({self.customers:,} customers): "
            f"per-customer keys {self.customer_bytes / n:,.0f} ({self.customer_keys:,} keys), "
            f"aggregates {self.aggregate_bytes / n:,.0f} ({self.aggregate_keys:,} keys)"
            + (
                f"; used_memory freed by dropping them {self.used_memory_delta / n:,.0f}"
                if self.used_memory_delta is not None
                else ""
            )
        ]
        ranked = sorted(self.kinds.items(), key=lambda item: -item[1][1])[:top]
        out += [
            f"    {kind:18} {keys:>9,} keys {size / n:>9,.1f} bytes/customer" for kind, (keys, size) in ranked
        ]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "customer_keys": self.customer_keys,
            "customer_bytes": self.customer_bytes,
            "aggregate_keys": self.aggregate_keys,
            "aggregate_bytes": self.aggregate_bytes,
            "used_memory_delta": self.used_memory_delta,
            "kinds": {kind: list(value) for kind, value in self.kinds.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Footprint:
        kinds = {kind: (int(v[0]), int(v[1])) for kind, v in data.get("kinds", {}).items()}
        return cls(**{**data, "kinds": kinds})


def used_memory(client: Any) -> int:
    """INFO memory's used_memory (bytes) of a synchronous redis client."""
    return int(client.info("memory")["used_memory"])


def _sizes(client: Any, keys: list[bytes]) -> Iterable[tuple[bytes, int]]:
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        pipe = client.pipeline(transaction=False)
        for key in chunk:
            pipe.execute_command("MEMORY USAGE", key, "SAMPLES", 0)
        yield from zip(chunk, (int(size or 0) for size in pipe.execute()), strict=True)


def drop(client: Any, prefix: str, footprint: Footprint | None = None) -> Footprint | None:
    """Delete every key under `prefix:` (DEL: freed synchronously, lazy frees awaited); with `footprint`,
    return it with the used_memory freed meanwhile as its cross-check."""
    before = used_memory(client)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=5000))
    for i in range(0, len(keys), _CHUNK):
        client.delete(*keys[i : i + _CHUNK])
    deadline = time.monotonic() + 10
    while int(client.info("memory").get("lazyfree_pending_objects", 0)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if footprint is None:
        return None
    return dataclasses.replace(footprint, used_memory_delta=before - used_memory(client))


def measure(client: Any, prefix: str, ids: set[str]) -> Footprint:
    """Size every key under `prefix:` with a synchronous redis client (see the module docstring)."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=5000))
    owners: set[str] = set()
    kinds: Counter[str] = Counter()
    kind_bytes: Counter[str] = Counter()
    per_customer = [0, 0]
    aggregate = [0, 0]
    for key, size in _sizes(client, keys):
        kind, owner = kind_of(key.decode("utf-8", "replace"), prefix, ids)
        kinds[kind] += 1
        kind_bytes[kind] += size
        target = aggregate if owner is None else per_customer
        target[0] += 1
        target[1] += size
        if owner is not None:
            owners.add(owner)
    return Footprint(
        customers=len(owners),
        customer_keys=per_customer[0],
        customer_bytes=per_customer[1],
        aggregate_keys=aggregate[0],
        aggregate_bytes=aggregate[1],
        kinds={kind: (kinds[kind], kind_bytes[kind]) for kind in kinds},
    )
