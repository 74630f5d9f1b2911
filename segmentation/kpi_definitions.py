"""What the per-segment KPIs count: the conversion window, the churn segment, the retention period and the
grid pairs whose crossing is kept (the `kpis` section of the definitions; docs/read_side.md, "KPIs").

They are definitions, not settings: the counters the worker keeps depend on them, so a replay under the same
definitions version must count the same way.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from segmentation.config_reading import DefinitionsError, read_int, read_list, read_str
from segmentation.instants import day_text

__all__ = ["PERIODS", "KpiConfig", "period_bounds", "period_of", "periods_within"]

PERIODS = ("day", "week", "month")
_KEYS = frozenset({"conversion_days", "churn", "retention_period", "crosstabs"})


@dataclass(frozen=True)
class KpiConfig:
    """`conversion_days`: an entrant converts when it buys within that many days of its entry;
    `churn_grid`/`churn_segment`: a move into this segment is a churn; `retention_period`: the calendar
    period retention counts distinct buyers over; `crosstabs`: grid pairs whose crossing is kept."""

    conversion_days: int = 30
    churn_grid: str = "lifecycle"
    churn_segment: str = "lost"
    retention_period: str = "month"
    crosstabs: tuple[tuple[str, str], ...] = (("lifecycle", "value"),)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object], grids: Mapping[str, tuple[str, ...]]) -> KpiConfig:
        """Validated against the grids the definitions have (`Definitions.grid_segments`)."""
        default = cls()
        extra = set(raw) - _KEYS
        if extra:
            raise DefinitionsError(f"kpis: unknown keys {sorted(map(str, extra))}")
        days = read_int(raw, "conversion_days", default.conversion_days, "kpis.")
        if not 1 <= days <= 3650:
            raise DefinitionsError(f"kpis.conversion_days: must be between 1 and 3650, got {days}")
        churn = read_str(raw, "churn", f"{default.churn_grid}.{default.churn_segment}", "kpis.")
        grid, _, segment = churn.rpartition(".")
        if segment not in grids.get(grid, ()):
            raise DefinitionsError(f"kpis.churn: {churn!r} is not <grid>.<segment> of a known grid")
        period = read_str(raw, "retention_period", default.retention_period, "kpis.")
        if period not in PERIODS:
            raise DefinitionsError(f"kpis.retention_period: one of {', '.join(PERIODS)}, got {period!r}")
        pairs: list[tuple[str, str]] = []
        for item in read_list(raw, "crosstabs", [list(p) for p in default.crosstabs], "kpis."):
            if (
                not isinstance(item, list)
                or len(item) != 2
                or not all(isinstance(g, str) and g in grids for g in item)
                or item[0] == item[1]
            ):
                raise DefinitionsError(f"kpis.crosstabs: {item!r} is not a pair of two known, distinct grids")
            if (item[0], item[1]) not in pairs and (item[1], item[0]) not in pairs:
                pairs.append((item[0], item[1]))
        return cls(days, grid, segment, period, tuple(pairs))


def period_of(day: date, unit: str) -> str:
    """The retention period holding `day`: `2026-03-05` (day), `2026-W10` (ISO week), `2026-03` (month)."""
    if unit == "day":
        return day_text(day)
    if unit == "week":
        text = _WEEKS.get(day)
        if text is None:
            if len(_WEEKS) >= _WEEKS_LIMIT:
                _WEEKS.clear()
            year, week, _ = day.isocalendar()
            text = _WEEKS[day] = f"{year:04d}-W{week:02d}"  # four digits, as isoformat: years before 1000 too
        return text
    return day_text(day)[:7]


_WEEKS: dict[date, str] = {}  # memo of period_of's weeks (a KPI step asks once per customer and day)
_WEEKS_LIMIT = 65_536


def period_bounds(period: str) -> tuple[date, date]:
    """First and last day of a period named by `period_of`."""
    if "-W" in period:
        year, week = period.split("-W")
        first = date.fromisocalendar(int(year), int(week), 1)
        return first, first + timedelta(days=min(6, (date.max - first).days))
    if len(period) == 7:
        first = date.fromisoformat(period + "-01")
        return first, first.replace(day=monthrange(first.year, first.month)[1])
    day = date.fromisoformat(period)
    return day, day


def periods_within(first: date, last: date, unit: str) -> list[str]:
    """The periods lying wholly inside the days first..last, in order."""
    out = []
    day = first
    while True:  # ends at the period holding `last` (never steps past date.max)
        period = period_of(day, unit)
        start, end = period_bounds(period)
        if start >= first and end <= last:
            out.append(period)
        if end >= last:
            break
        day = end + timedelta(days=1)
    return out
