"""Definition changes from stored state: a shadow diff, then a fenced apply.

`diff` reads every stored customer (SCAN + pipelined HGETALL), re-segments it under the new definitions at
its own clock (`resegment(state, new, at=state.clock)`, exactly what the worker's `apply`/`advance` do to a
state built under another version), and counts, per grid, customers by (current segment, new segment).
Nothing is written and no event is replayed.

`apply` does the same and writes it: per partition it *claims* the partition (a new fence token, so a worker
still running on it can no longer commit: stop the worker first), publishes the transitions (cause
`definitions`, the new version) and waits for the acks, then commits the changed fields through the same
fenced Lua commit as the worker (`write_for` + `StateStore.commit` without an offset). Publish-then-commit
is the worker's order: a crash in between re-publishes the same transition ids on the next run. A second
apply finds every state at the new version and changes nothing: no write, no transition.
Then restart the worker with SEGSTREAM_DEFINITIONS_FILE pointing at the new file (a worker started with the
old file would re-segment customers back to the old version as their events arrive).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from segmentation import CustomerState, Definitions, resegment
from segmentation.grids import GRID_ORDER
from segmentation.transition import Transition
from streams.store.indexes import IndexDelta
from streams.store.keys import KeySpace
from streams.store.kpi_ops import KpiCounting, check_stored
from streams.store.port import CustomerWrite, WriteBatch
from streams.store.redis_store import RedisStateStore
from streams.store.replies import text
from streams.store.stored_state import is_tombstone, loaded, stored_state
from streams.store.writes import index_write, write_for
from streams.topics.envelope import transition_event

READ_BATCH = 500
TABLE_WIDTH = 100  # columns of printed tables: half a wide screen, a usual terminal
AUDIENCE = "audience:"
MOVING_FROM = "moving_from"  # definitions hash field: the version an unfinished `apply` moves away from
Cell = tuple[str, str, str]  # grid, from, to ("-" for no segment)


def segments_of(state: CustomerState) -> dict[str, str]:
    """grid -> segment ('-' when the customer has none in that grid) for every grid the state carries."""
    out = {grid: getattr(state, f"seg_{grid}") or "-" for grid in GRID_ORDER if grid != "clv"}
    if state.seg_clv is not None:  # the clv grid exists only under definitions with a clv section
        out["clv"] = state.seg_clv
    out.update((AUDIENCE + name, segment) for name, segment in state.audiences)
    return out


@dataclass
class Matrix:
    """Customers per (grid, from, to), the diagonal (customers who stay) included."""

    cells: Counter[Cell] = field(default_factory=Counter)
    customers: int = 0
    already_current: int = 0  # customers whose state is at the new version already

    def add(self, before: CustomerState, after: CustomerState) -> None:
        self.customers += 1
        old, new = segments_of(before), segments_of(after)
        for grid in dict.fromkeys([*old, *new]):
            self.cells[(grid, old.get(grid, "-"), new.get(grid, "-"))] += 1

    def moves(self) -> dict[Cell, int]:
        return {cell: n for cell, n in sorted(self.cells.items()) if cell[1] != cell[2]}

    def grids(self) -> list[str]:
        return sorted({g for g, _, _ in self.cells}, key=lambda g: (g.startswith(AUDIENCE), g))

    def table(self, moves_only_grids: bool = True, width: int = TABLE_WIDTH) -> str:
        """One from x to matrix per grid (rows: current segment, columns: new segment). A matrix wider than
        `width` (the RFM grid's 11 segments take ~190 columns) is cut into column blocks that each fit, with
        the row names repeated, so no terminal wraps a row into the next."""
        out: list[str] = [f"{self.customers:,} customers; cells count customers (row: now, column: new)"]
        for grid in self.grids():
            cells = {(f, t): n for (g, f, t), n in self.cells.items() if g == grid}
            moved = sum(n for (f, t), n in cells.items() if f != t)
            if moves_only_grids and not moved:
                out.append(f"\n{grid}: no change")
                continue
            out.append(f"\n{grid}: {moved:,} would move")
            out += matrix_lines(cells, width)
        return "\n".join(out)

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["grid", "from", "to", "customers"])
            for (grid, old, new), n in sorted(self.cells.items()):
                writer.writerow([grid, old, new, n])

    def to_json(self) -> bytes:
        grids: dict[str, list[dict[str, object]]] = {}
        for (grid, old, new), n in sorted(self.cells.items()):
            grids.setdefault(grid, []).append({"from": old, "to": new, "customers": n})
        return orjson.dumps(
            {"customers": self.customers, "already_current": self.already_current, "grids": grids},
            option=orjson.OPT_INDENT_2,
        )


def matrix_lines(cells: Mapping[tuple[str, str], int], width: int = TABLE_WIDTH) -> list[str]:
    """`cells` (now, new) -> customers as text: each column as wide as its name or count, blocks of columns
    packed to `width`; '.' for an empty cell, so the non-zero ones stand out."""
    rows = sorted({f for f, _ in cells})
    cols = sorted({t for _, t in cells})
    corner = "now \\ new"
    first = max(len(corner), *(len(r) for r in rows)) + 2
    widths = {c: max(len(c), *(len(f"{cells.get((r, c), 0):,}") for r in rows)) + 2 for c in cols}
    blocks: list[list[str]] = [[]]
    used = first
    for c in cols:
        if blocks[-1] and used + widths[c] > width:
            blocks.append([])
            used = first
        blocks[-1].append(c)
        used += widths[c]
    out: list[str] = []
    for i, block in enumerate(blocks):
        if len(blocks) > 1:
            out.append(f"(columns {cols.index(block[0]) + 1}-{cols.index(block[-1]) + 1} of {len(cols)})")
        out.append(f"{corner:<{first}}" + "".join(f"{c:>{widths[c]}}" for c in block))
        for r in rows:
            values = (f"{cells[(r, c)]:,}" if cells.get((r, c)) else "." for c in block)
            out.append(
                f"{r:<{first}}" + "".join(f"{v:>{widths[c]}}" for v, c in zip(values, block, strict=True))
            )
        if i + 1 < len(blocks):
            out.append("")
    return out


async def stored_customers(
    client: aioredis.Redis, keys: KeySpace, partition: int
) -> AsyncIterator[list[tuple[str, dict[str, str]]]]:
    """The partition's customers as (id, stored mapping), in batches (SCAN + pipelined HGETALL)."""
    store = RedisStateStore(client, keys)
    batch: list[str] = []
    async for customer_id in store.customer_ids(partition):
        batch.append(customer_id)
        if len(batch) >= READ_BATCH:
            rows = await store.load(partition, batch)
            yield [(cid, row) for cid, row in rows.items() if not is_tombstone(row)]  # erased since the scan
            batch = []
    if batch:
        rows = await store.load(partition, batch)
        yield [(cid, row) for cid, row in rows.items() if not is_tombstone(row)]


def reseg(state: CustomerState, new: Definitions) -> tuple[CustomerState, tuple[Transition, ...]]:
    if state.clock is None:
        return state, ()
    outcome = resegment(state, new, at=state.clock)
    return outcome.state, outcome.transitions


async def diff(client: aioredis.Redis, keys: KeySpace, partitions: int, new: Definitions) -> Matrix:
    matrix = Matrix()
    for p in range(partitions):
        async for rows in stored_customers(client, keys, p):
            for _, row in rows:
                state = stored_state(row, keys.namespace)
                if state.definitions_version == new.version:
                    matrix.already_current += 1
                after, _ = reseg(state, new)
                matrix.add(state, after)
    return matrix


@dataclass
class ApplyResult:
    matrix: Matrix
    written: int = 0
    transitions: int = 0
    by_grid: Counter[str] = field(default_factory=Counter)


async def apply(
    client: aioredis.Redis,
    keys: KeySpace,
    partitions: int,
    new: Definitions,
    publish: Callable[[list[Transition]], Awaitable[object]] | None,
    definitions_yaml: str | None = None,
    history_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> ApplyResult:
    """Re-segment and write every customer (see the module docstring); `publish` awaits the acks.
    The read side moves with the states, in the same commit: membership, KPIs, day flows, history.
    `progress(partitions done, customers done)` is told after each batch of customers (a progress bar)."""
    store = RedisStateStore(client, keys)
    result = ApplyResult(Matrix())
    customers = 0
    moving = False  # the new version recorded yet (`_record_moving`), before the first write or publish
    for p in range(partitions):
        claim = await store.claim(p)  # fences any worker still running on this partition
        await store.load(p, [], claim)  # refuses day counters of an earlier segstream (store/weeks.py)
        async for rows in stored_customers(client, keys, p):
            writes: list[CustomerWrite] = []
            transitions: list[Transition] = []
            index = IndexDelta(history_size=history_size)
            moved: list[tuple[CustomerWrite, Mapping[str, str], Mapping[str, str]]] = []
            stored: dict[str, tuple[CustomerState, Mapping[str, str]]] = {}
            counting = KpiCounting(new, index, stored)
            for _, stored_row in rows:
                state, row = loaded(stored_row, keys.namespace)
                check_stored(row, keys.namespace)  # a KPI marker this code cannot continue
                stored[state.customer_id] = (state, row)
                if state.definitions_version == new.version:
                    result.matrix.already_current += 1
                after, changed = reseg(state, new)
                result.matrix.add(state, after)
                counting.step(state, after, changed)
                write, new_row = write_for(after, row)
                write = counting.finish(write, new_row)  # type: ignore[arg-type]
                if write.delete or write.set_fields or write.binary or write.removed_fields or changed:
                    writes.append(write)
                    moved.append((write, row, new_row))
                transitions.extend(changed)
            index.transitions(transitions)  # first, as the worker does (an erasure then wipes the history)
            for write, before, new_row in moved:
                index_write(index, write, before, new_row)
            if not moving and (writes or transitions):
                moving = await _record_moving(client, keys, new.version)
            if transitions and publish is not None:
                await publish(transitions)
            if writes:
                await store.commit(claim, None, None, WriteBatch(writes, index))
            result.written += len(writes)
            result.transitions += len(transitions)
            result.by_grid.update(t.grid for t in transitions)
            customers += len(rows)
            if progress is not None:
                progress(p, customers)
        if progress is not None:
            progress(p + 1, customers)
    if not moving:
        await _record_moving(client, keys, new.version)
    async with client.pipeline(transaction=True) as pipe:
        if definitions_yaml is not None:
            pipe.hset(keys.definitions(), "yaml", definitions_yaml)
        pipe.hdel(keys.definitions(), MOVING_FROM)
        await pipe.execute()
    return result


async def _record_moving(client: aioredis.Redis, keys: KeySpace, version: str) -> bool:
    """The new version is the namespace's from before the first customer moves: after an apply stopped half
    way, a worker with the old definitions is refused (it would move the applied partitions back), one with
    the new ones accepted (it moves the rest as their events arrive). The version it moves from is kept
    until the apply ends, so a rerun still logs it (`previous_version`). (Not before the first partition's
    checks: an apply that refuses stored data writes nothing.)"""
    recorded = await client.hget(keys.definitions(), "version")
    previous = None if recorded is None else text(recorded)
    async with client.pipeline(transaction=True) as pipe:
        if previous is not None and previous != version:  # else: a rerun, which keeps the first run's
            pipe.hset(keys.definitions(), MOVING_FROM, previous)
        pipe.hset(keys.definitions(), "version", version)
        pipe.hdel(keys.definitions(), "yaml")  # the old version's; the new one's is written at the end
        await pipe.execute()
    return True


async def moving_from(client: aioredis.Redis, keys: KeySpace) -> str | None:
    """The version the namespace had before an apply that has not finished (or the recorded one)."""
    before, version = await client.hmget(keys.definitions(), [MOVING_FROM, "version"])
    value = before if before is not None else version
    return None if value is None else text(value)


def envelope_items(transitions: list[Transition]) -> list[tuple[bytes, bytes, tuple[()]]]:
    return [(t.customer_id.encode(), transition_event(t), ()) for t in transitions]
