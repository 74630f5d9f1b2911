"""The history of a namespace's definitions: which version was applied when, by whom, and what it moved.

Why: `<prefix>:<ns>:definitions` holds only the current version; after a surprising segment count a marketing
manager asks "what changed, when, and who did it". Every `definitions apply` (and every replay, which builds
a namespace under a version) appends one JSON entry to the list `<prefix>:<ns>:definitions:log` (oldest
first, the last MAX_ENTRIES kept); `segstream definitions log` prints them. The summary comes from the
run's own result (apply: customers who changed segment, per grid; replay: transitions per grid), never from
a later re-computation. `applied_at` is the wall clock of the machine that ran the command: a record of
operations, not part of any state (states depend on event time only).
"""

from __future__ import annotations

import getpass
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import redis.asyncio as aioredis

from streams.store.keys import KeySpace

MAX_ENTRIES: Final = 1000


def default_by() -> str:
    """The operator's login name when `--by` is not given (a label, not an authentication)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name known to the system (a container without passwd entry)
        return "unknown"


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def moved_per_grid(cells: Mapping[tuple[str, str, str], int]) -> dict[str, int]:
    """Customers who changed segment, per grid, from a diff matrix's (grid, from, to) cells."""
    moved: Counter[str] = Counter()
    for (grid, old, new), n in cells.items():
        if old != new:
            moved[grid] += n
    return dict(sorted(moved.items()))


async def record(client: aioredis.Redis, keys: KeySpace, entry: Mapping[str, Any]) -> None:
    """Append one entry (and keep the last MAX_ENTRIES)."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.rpush(keys.definitions_log(), orjson.dumps(entry, option=orjson.OPT_SORT_KEYS))
        pipe.ltrim(keys.definitions_log(), -MAX_ENTRIES, -1)
        await pipe.execute()


async def entries(client: aioredis.Redis, keys: KeySpace) -> list[dict[str, Any]]:
    """Every kept entry, oldest first."""
    return [orjson.loads(raw) for raw in await client.lrange(keys.definitions_log(), 0, -1)]


def _summary(entry: Mapping[str, Any]) -> str:
    if entry.get("action") == "replay":
        per_grid = entry.get("transitions_by_grid", {})
        head = f"replay of {entry.get('source')}: {entry.get('customers', 0):,} customers"
        what = "transitions"
    else:
        per_grid = entry.get("moved", {})
        head = f"apply of {entry.get('source')}: {entry.get('customers', 0):,} customers"
        what = "moved"
    detail = ", ".join(f"{grid} {n:,}" for grid, n in per_grid.items()) or "none"
    return f"{head}; {what}: {detail}"


def table(namespace: str, log: list[dict[str, Any]]) -> str:
    """One block per entry, oldest first: when, version (from the previous one), by whom, the summary."""
    if not log:
        return f"namespace {namespace!r}: no definitions change recorded"
    out = [f"namespace {namespace!r}: {len(log)} definitions change(s), oldest first"]
    for entry in log:
        previous = entry.get("previous_version")
        change = (
            entry["version"] if previous in (None, entry["version"]) else f"{previous} -> {entry['version']}"
        )
        out.append(f"{entry['applied_at']}  {change}  by {entry['by']}")
        out.append(f"    {_summary(entry)}")
    return "\n".join(out)
