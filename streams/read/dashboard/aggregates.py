"""What the dashboard draws, from aggregate keys only: segment sizes per day, transitions between dates.

Why no customer is read: at a million customers the page must cost a few HGETALLs per partition and week.
Sizes over time come from today's counts (`k:<grid>`) and the daily flows (derived from the per-day (from,
to) counters `t:<grid>:<week>`): the size at the end of day D is today's count minus the net entries of every
later day, exact because every membership change is a transition and every transition is one move (erasures
included: an exit to no segment). The transition matrix between two dates sums the same counters over the
weeks it spans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from pydantic import Field

from streams.read.profile import Answer
from streams.read.reader import BadRequest, NotFound, SegmentReader
from streams.read.snapshot import grid_flows, week_snapshot
from streams.store.weeks import moves_of_week_rows, weeks_of_range

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
NONE = "-"  # no segment: before a customer's first transition in the grid, or after an erasure


class Sizes(Answer):
    grid: str
    days: list[str] = Field(description="UTC days, oldest first, every day of the range")
    sizes: dict[str, list[int]] = Field(description="segment -> customers at the end of each day")
    current: dict[str, int] = Field(description="segment -> customers now (k:<grid>)")


class Moves(Answer):
    grid: str
    start: str | None = Field(description="first UTC day counted (null: from the first flow)")
    end: str | None = Field(description="last UTC day counted (null: to the last flow)")
    segments: list[str] = Field(description="the grid's segments, then '-' (no segment)")
    cells: list[tuple[str, str, int]] = Field(description="[from, to, transitions], non-zero only")
    total: int


def parse_day(raw: str | None, name: str) -> date | None:
    """An optional ISO day (YYYY-MM-DD); anything else (an empty value too) is a 400 naming the parameter."""
    if raw is None:
        return None
    try:
        if not _DAY.fullmatch(raw):  # ASCII digits only, as the OpenAPI pattern says
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a day YYYY-MM-DD") from None


def sizes_from_flows(
    segments: tuple[str, ...],
    current: Mapping[str, int],
    flows: Mapping[str, Mapping[str, Mapping[str, int]]],
    start: date | None,
    end: date | None,
) -> tuple[list[str], dict[str, list[int]]]:
    """Per day of [start, end] within the flows' first and last day (before the first every segment is
    empty, after the last nothing changed), the size at the end of the day; none when the range is empty."""
    known = sorted(flows)
    lowest = date.fromisoformat(known[0]) if known else None
    highest = date.fromisoformat(known[-1]) if known else None
    if lowest is None or highest is None:
        return [], {s: [] for s in segments}
    first = max(start or lowest, lowest)
    last = min(end or highest, highest)
    if first > last:
        return [], {s: [] for s in segments}
    size = {s: current.get(s, 0) for s in segments}
    # Undo, newest first, the net entries of every day after `last`, then walk back through the range.
    later = [d for d in known if d > last.isoformat()]
    for day in later:
        for s, cell in flows[day].items():
            if s in size:
                size[s] -= cell.get("in", 0) - cell.get("out", 0)
    days = [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    out: dict[str, list[int]] = {s: [0] * len(days) for s in segments}
    for i in range(len(days) - 1, -1, -1):
        for s in segments:
            out[s][i] = size[s]
        for s, cell in flows.get(days[i], {}).items():
            if s in size:
                size[s] -= cell.get("in", 0) - cell.get("out", 0)
    return days, out


async def segment_sizes(reader: SegmentReader, grid: str, start: date | None, end: date | None) -> Sizes:
    if grid not in reader.grids:
        raise NotFound(f"unknown grid {grid!r}")
    segments = tuple(reader.grids[grid])
    keys, partitions = await reader.keyspace(), range(reader.settings.topic_partitions)
    flows, current = await grid_flows(reader.client, keys, partitions, grid)  # of one commit per partition
    days, sizes = sizes_from_flows(segments, current, flows, start, end)
    return Sizes(grid=grid, days=days, sizes=sizes, current={s: current.get(s, 0) for s in segments})


def moves_matrix(
    segments: tuple[str, ...],
    rows: Iterable[tuple[str, Mapping[Any, Any]]],
    start: date | None,
    end: date | None,
) -> tuple[list[tuple[str, str, int]], int]:
    """The transition matrix of the days start..end (None: unbounded; from after to: empty) from the `t:`
    week keys as read (week, reply), summed over the partitions."""
    first = start.isoformat() if start else ""
    last = end.isoformat() if end else "9999-12-31"
    return moves_cells(segments, moves_of_week_rows(rows, first, last))


def moves_cells(
    segments: tuple[str, ...], pairs: Mapping[str, int]
) -> tuple[list[tuple[str, str, int]], int]:
    """The matrix's non-zero cells (from, to, moves) in the grid's segment order ('-' last), and their sum."""
    sums: dict[tuple[str, str], int] = {}
    for pair, n in pairs.items():
        old, _, new = pair.partition(">")  # segment names hold no '>' (definitions refuse them)
        sums[(old, new)] = n
    order = {s: i for i, s in enumerate((*segments, NONE))}
    cells = sorted(
        ((old, new, n) for (old, new), n in sums.items() if n),
        key=lambda c: (order.get(c[0], len(order)), order.get(c[1], len(order))),
    )
    return cells, sum(n for _, _, n in cells)


async def segment_moves(reader: SegmentReader, grid: str, start: date | None, end: date | None) -> Moves:
    segments = reader.grids.get(grid)
    if segments is None:
        await reader.segment_flows(grid)  # the reader's NotFound, worded as everywhere else
        raise AssertionError("unreachable")
    keys = await reader.keyspace()
    partitions = range(reader.settings.topic_partitions)

    def names_of(p: int, weeks: set[str]) -> list[str]:
        return [keys.moves(p, grid, week) for week in weeks_of_range(weeks, start, end)]

    known, replies = await week_snapshot(
        reader.client, keys, partitions, names_of
    )  # each partition's of one commit
    rows = [
        (w, replies.get(keys.moves(p, grid, w), {}))
        for p in partitions
        for w in weeks_of_range(known, start, end)
    ]
    cells, total = moves_matrix(tuple(segments), rows, start, end)
    return Moves(
        grid=grid,
        start=start.isoformat() if start else None,
        end=end.isoformat() if end else None,
        segments=[*segments, NONE],
        cells=cells,
        total=total,
    )
