"""Per-segment KPIs over a period and the grid crossings: read (each partition's of one commit: the weeks
that hold counters, then the keys, `streams/read/snapshot.py`), summed over partitions, derived by the pure
`segmentation.kpi_figures`. No customer is read: only the aggregate hashes `k:<grid>`, the weeks'
`f:<grid>:<week>` and `d:<grid>:<week>`, `r:<grid>` and `x:<a>|<b>` (docs/read_side.md, "KPIs per segment and
crossing").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import redis.asyncio as aioredis
from pydantic import Field

from segmentation import Definitions
from segmentation.kpi_figures import crosstab_cells, segment_figures
from streams.read.profile import Answer, Money, money, money_ratio
from streams.read.snapshot import week_snapshot
from streams.store.day_names import period_named
from streams.store.keys import KeySpace
from streams.store.weeks import (
    day_field,
    flat_flows,
    flows_of_week_rows,
    period_years,
    periods_of_range,
    weeks_of_range,
)


class SegmentKpis(Answer):
    """One segment over the days asked (counts are exact; ratios are None when they would divide by 0)."""

    customers_at_start: int = Field(description="members at the start of the first day")
    customers_at_end: int = Field(description="members at the end of the last day")
    entrants: int = Field(description="entries into the segment during the days")
    exits: int
    orders: int = Field(description="purchases of customers in the segment once the purchase applied")
    revenue_minor: int = Field(description="their net amounts (refunds subtract), base-currency minor units")
    revenue: Money
    revenue_share: float | None = Field(description="revenue / the grid's revenue over the days")
    average_basket: Money | None = Field(description="revenue / orders, rounded half-to-even")
    converted: int = Field(description="entrants of these days who bought within conversion_days")
    conversion: float | None = Field(description="converted / entrants")
    churned: int = Field(description="moves into the churn segment made from this segment")
    churn_rate: float | None = Field(description="churned / customers_at_start")


class SegmentPeriodKpis(Answer):
    """One segment's cohort over one retention period: its members at the period's start."""

    customers_at_start: int
    buyers: int = Field(description="members at the start who bought during the period (each once)")
    retention: float | None = Field(description="buyers / customers_at_start")
    orders: int = Field(description="the buyers' purchases during the period")
    revenue_minor: int
    revenue: Money
    purchase_frequency: float | None = Field(description="orders / buyers")
    average_basket: Money | None


class PeriodKpis(Answer):
    period: str = Field(description="2026-03 (month), 2026-W10 (ISO week) or 2026-03-05 (day)")
    first_day: date
    last_day: date
    segments: dict[str, SegmentPeriodKpis]


class GridKpis(Answer):
    grid: str
    first_day: date | None = Field(description="null: from the first counted day")
    last_day: date | None = Field(description="null: up to the last counted day")
    currency: str
    conversion_days: int
    churn: str = Field(description="<grid>.<segment> a move into which is a churn")
    retention_period: str
    orders: int
    revenue: Money
    segments: dict[str, SegmentKpis]
    periods: list[PeriodKpis] = Field(description="retention periods lying wholly inside the days")


class CrossCell(Answer):
    customers: int
    orders: int
    revenue_minor: int
    revenue: Money
    average_basket: Money | None


class Crosstab(Answer):
    rows: str = Field(description="grid whose segments are the rows")
    columns: str = Field(description="grid whose segments are the columns")
    currency: str
    cells: dict[str, dict[str, CrossCell]] = Field(description="row segment -> column segment -> cell")


def not_kept(definitions: Definitions, a: str, b: str) -> str:
    kept = ", ".join(f"{x} {y}" for x, y in definitions.kpis.crosstabs) or "none"
    return f"the crossing {a} x {b} is not kept (kpis.crosstabs: {kept})"


async def _summed(client: aioredis.Redis, names: Sequence[str]) -> list[dict[str, int]]:
    """HGETALL of each key, in one pipeline."""
    return [_counts(row) for row in await _replies(client, names)]


async def _replies(client: aioredis.Redis, names: Sequence[str]) -> list[dict[Any, Any]]:
    """HGETALL of each key, in one pipeline, as the client gives them."""
    async with client.pipeline(transaction=False) as pipe:
        for key in names:
            pipe.hgetall(key)
        return await pipe.execute()


def _counts(row: Mapping[Any, Any]) -> dict[str, int]:
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in row.items()}


def _days_named(rows: Sequence[Mapping[str, int]], weeks: Sequence[str]) -> list[dict[str, int]]:
    """Rows of week keys (`weeks[i]` the week of `rows[i]`), their fields named by their day."""
    return [
        {day_field(week, name): v for name, v in row.items()} for row, week in zip(rows, weeks, strict=True)
    ]


def _periods_named(row: Mapping[str, int], year: str) -> dict[str, int]:
    """A year's retention key (`r:<grid>:<year>`), its fields named in full (`day_names.period_named`)."""
    return {period_named(name, year): v for name, v in row.items()}


def _add(rows: Sequence[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for row in rows:
        for name, value in row.items():
            out[name] += value
    return out


async def grid_kpis(
    client: aioredis.Redis,
    keys: KeySpace,
    partitions: range,
    definitions: Definitions,
    grid: str,
    first: date | None,
    last: date | None,
) -> GridKpis:
    # Per partition, of one commit (`snapshot`: with its `w` set, the weeks that hold counters, and its
    # format: an older namespace is refused): the range's weeks of `d:`, every week of `t:` from the range's
    # first (the counts at its start and end are today's minus the flows since, derived from the moves), the
    # years of its retention periods (`r:`), today's `k:`.
    earliest = min(first, last) if first is not None and last is not None else first  # from after to too

    def names_of(p: int, weeks: set[str]) -> list[str]:
        counted, since = weeks_of_range(weeks, first, last), weeks_of_range(weeks, earliest, None)
        names = [keys.segment_days(p, grid, w) for w in counted] + [keys.moves(p, grid, w) for w in since]
        years = periods_of_range(period_years(weeks), first, last)
        return [*names, *(keys.segment_periods(p, grid, year) for year in years), keys.kpis(p, grid)]

    known, snapshot = await week_snapshot(client, keys, partitions, names_of)
    counted, since = weeks_of_range(known, first, last), weeks_of_range(known, earliest, None)
    years = periods_of_range(period_years(known), first, last)
    d_names = [(keys.segment_days(p, grid, w), w) for p in partitions for w in counted]
    t_names = [(keys.moves(p, grid, w), w) for p in partitions for w in since]
    r_years = [year for _ in partitions for year in years]
    r_names = [keys.segment_periods(p, grid, year) for p in partitions for year in years]
    names = [*(name for name, _ in d_names), *(name for name, _ in t_names), *r_names]
    names += [keys.kpis(p, grid) for p in partitions]
    config = definitions.kpis
    segments = definitions.grid_segments[grid]
    replies = [snapshot.get(name, {}) for name in names]  # a key of a week the partition has not: none
    d, t, r = len(d_names), len(t_names), len(r_names)
    # the moves as they came (`flows_of_week_rows` decodes each distinct name once), the rest as counts
    flows = flat_flows(flows_of_week_rows(zip([w for _, w in t_names], replies[d : d + t], strict=True)))
    rows = [_counts(row) for row in (*replies[:d], *replies[d + t :])]
    periods = [_periods_named(row, year) for row, year in zip(rows[d : d + r], r_years, strict=True)]
    counters = _add([*_days_named(rows[:d], [w for _, w in d_names]), *periods])
    current = _add(rows[d + r :])
    customers = {name[: -len(":customers")]: v for name, v in current.items() if name.endswith(":customers")}
    figures = segment_figures(segments, counters, flows, customers, first, last, config.retention_period)
    currency = definitions.currency
    return GridKpis(
        grid=grid,
        first_day=first,
        last_day=last,
        currency=currency,
        conversion_days=config.conversion_days,
        churn=f"{config.churn_grid}.{config.churn_segment}",
        retention_period=config.retention_period,
        orders=figures["total"]["orders"],
        revenue=money(figures["total"]["revenue_minor"], currency),
        segments={s: _segment(row, currency) for s, row in figures["segments"].items()},
        periods=[
            PeriodKpis(
                period=p["period"],
                first_day=date.fromisoformat(p["from"]),
                last_day=date.fromisoformat(p["to"]),
                segments={s: _cohort(row, currency) for s, row in p["segments"].items()},
            )
            for p in figures["periods"]
        ],
    )


def _basket(revenue: int, orders: int, currency: str) -> Money | None:
    return money_ratio(revenue, orders, currency) if orders else None


def _segment(row: Mapping[str, Any], currency: str) -> SegmentKpis:
    return SegmentKpis(
        **row,
        revenue=money(row["revenue_minor"], currency),
        average_basket=_basket(row["revenue_minor"], row["orders"], currency),
    )


def _cohort(row: Mapping[str, Any], currency: str) -> SegmentPeriodKpis:
    return SegmentPeriodKpis(
        **row,
        revenue=money(row["revenue_minor"], currency),
        average_basket=_basket(row["revenue_minor"], row["orders"], currency),
    )


def kept_pair(definitions: Definitions, a: str, b: str) -> tuple[str, bool] | None:
    """The stored pair key for grids a x b and whether it is stored as b x a; None if not kept."""
    for first, second in definitions.kpis.crosstabs:
        if (first, second) == (a, b):
            return f"{a}|{b}", False
        if (first, second) == (b, a):
            return f"{b}|{a}", True
    return None


async def crosstab(
    client: aioredis.Redis, keys: KeySpace, partitions: range, definitions: Definitions, a: str, b: str
) -> Crosstab | None:
    """Customers, orders, net revenue per (segment of a, segment of b) now; None: the pair is not kept."""
    kept = kept_pair(definitions, a, b)
    if kept is None:
        return None
    pair, transposed = kept
    counters = _add(await _summed(client, [keys.crosstab(p, pair) for p in partitions]))
    grids = definitions.grid_segments
    cells = crosstab_cells(grids[a], grids[b], counters, transposed)
    currency = definitions.currency
    return Crosstab(
        rows=a,
        columns=b,
        currency=currency,
        cells={
            row: {
                column: CrossCell(
                    **cell,
                    revenue=money(cell["revenue_minor"], currency),
                    average_basket=_basket(cell["revenue_minor"], cell["orders"], currency),
                )
                for column, cell in columns.items()
            }
            for row, columns in cells.items()
        },
    )
