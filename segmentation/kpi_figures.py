"""Per-segment KPIs of a period, derived from the summed counters (pure; docs/read_side.md, "KPIs").

Inputs are the grid's counters summed over partitions: `counters` (`d:<grid>`: `<segment>:<metric>:<day or
period>`, see `kpi_tracking`), `flows` (`<segment>:in|out:<day>`, derived from the `t:<grid>` day moves) and
`customers` (today's count per segment, `k:<grid>`). Days are ISO dates (`YYYY-MM-DD`, UTC), so they compare
as strings. Nothing here approximates: every figure is a sum of exact counters or a ratio of two such sums
(None when it would divide by zero).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from segmentation.kpi_definitions import period_bounds, periods_within

__all__ = ["DAY_METRICS", "PERIOD_METRICS", "crosstab_cells", "segment_figures"]

FILL_DAYS = 3660  # over a longer range, only the periods that have counters are listed
DAY_METRICS = ("orders", "revenue", "converted", "churned")
PERIOD_METRICS = ("retained", "cohort_orders", "cohort_revenue")


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def segment_figures(
    segments: Sequence[str],
    counters: Mapping[str, int],
    flows: Mapping[str, int],
    customers: Mapping[str, int],
    first: date | None,
    last: date | None,
    period_unit: str = "month",
) -> dict[str, Any]:
    """Figures of every segment over the days `first`..`last` (inclusive; None: unbounded), and of every
    retention period lying wholly inside them (with both bounds at most FILL_DAYS apart, every such period,
    counted or not; else the counted ones). Money stays in minor units (integers)."""
    lo = first.isoformat() if first else ""
    hi = last.isoformat() if last else "9999-12-31"
    days: dict[str, dict[str, int]] = {s: defaultdict(int) for s in segments}
    periods: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: {s: defaultdict(int) for s in segments}
    )
    if first is not None and last is not None and (last - first).days <= FILL_DAYS:
        for period in periods_within(first, last, period_unit):
            periods[period] = {s: defaultdict(int) for s in segments}
    for name, value in counters.items():
        segment, metric, bucket = name.rsplit(":", 2)
        if metric in PERIOD_METRICS:
            start, end = period_bounds(bucket)
            if lo <= start.isoformat() and end.isoformat() <= hi:
                periods[bucket].setdefault(segment, defaultdict(int))[metric] += value
        elif lo <= bucket <= hi:
            days.setdefault(segment, defaultdict(int))[metric] += value
    moved: dict[str, list[tuple[str, int]]] = defaultdict(list)  # segment -> (day, in - out) per flow
    for name, value in flows.items():
        segment, direction, day = name.rsplit(":", 2)
        moved[segment].append((day, value if direction == "in" else -value))
        if lo <= day <= hi:
            days.setdefault(segment, defaultdict(int))["entrants" if direction == "in" else "exits"] += value

    def count_at_start(segment: str, day: str) -> int:
        """Customers in the segment at the start of `day`: today's count minus the moves since."""
        return customers.get(segment, 0) - sum(v for d, v in moved.get(segment, ()) if d >= day)

    def count_at_end(segment: str, day: str) -> int:
        return customers.get(segment, 0) - sum(v for d, v in moved.get(segment, ()) if d > day)

    total_revenue = sum(row["revenue"] for row in days.values())
    by_segment = {}
    for segment, row in days.items():
        at_start = count_at_start(segment, lo)
        by_segment[segment] = {
            "customers_at_start": at_start,
            "customers_at_end": count_at_end(segment, hi),
            "entrants": row["entrants"],
            "exits": row["exits"],
            "orders": row["orders"],
            "revenue_minor": row["revenue"],
            "revenue_share": _ratio(row["revenue"], total_revenue),
            "converted": row["converted"],
            "conversion": _ratio(row["converted"], row["entrants"]),
            "churned": row["churned"],
            "churn_rate": _ratio(row["churned"], at_start),
        }
    return {
        "segments": by_segment,
        "total": {
            "orders": sum(row["orders"] for row in days.values()),
            "revenue_minor": total_revenue,
        },
        "periods": [_period(name, rows, count_at_start) for name, rows in sorted(periods.items())],
    }


def _period(name: str, rows: Mapping[str, Mapping[str, int]], count_at_start: Any) -> dict[str, Any]:
    start, end = period_bounds(name)
    out = {}
    for segment, row in rows.items():
        at_start = count_at_start(segment, start.isoformat())
        buyers, orders = row.get("retained", 0), row.get("cohort_orders", 0)
        out[segment] = {
            "customers_at_start": at_start,
            "buyers": buyers,
            "retention": _ratio(buyers, at_start),
            "orders": orders,
            "revenue_minor": row.get("cohort_revenue", 0),
            "purchase_frequency": _ratio(orders, buyers),
        }
    return {"period": name, "from": start.isoformat(), "to": end.isoformat(), "segments": out}


def crosstab_cells(
    rows: Sequence[str], columns: Sequence[str], counters: Mapping[str, int], transposed: bool
) -> dict[str, dict[str, dict[str, int]]]:
    """row segment -> column segment -> {customers, revenue_minor, orders} (every cell, zeros included)
    from the summed `x:<a>|<b>` counters (`<a segment>|<b segment>:<metric>`); `transposed` when the rows
    are grid b's segments."""
    cells = {r: {c: {"customers": 0, "revenue_minor": 0, "orders": 0} for c in columns} for r in rows}
    for name, value in counters.items():
        pair, _, metric = name.rpartition(":")
        first, _, second = pair.partition("|")
        row, column = (second, first) if transposed else (first, second)
        cell = cells.setdefault(row, {}).setdefault(column, {"customers": 0, "revenue_minor": 0, "orders": 0})
        cell[metric] = cell.get(metric, 0) + value
    return cells
