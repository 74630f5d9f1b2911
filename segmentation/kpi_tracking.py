"""Per-segment KPI counts of one customer's step (an event, or time passing), and the per-customer marker
that keeps them exact: which segments the customer held at the start of the current retention period,
whether it was already counted as a buyer of that period, and its entries still waiting for a purchase.

Every count is a (grid, field, delta) the read side adds to `d:<grid>`: `<segment>:<metric>:<day or period>`.
A step sees the customer's changes in effective-time order (the core emits them so), so counting never
depends on how events were batched: a replay counts what the live worker counted. Definitions, per grid G and
segment S (docs/read_side.md, "KPIs per segment and crossing"):

- `orders:<day>` / `revenue:<day>`: purchases (net amounts: refunds subtract) of customers in S once the
  purchase (refund) is applied, on the UTC day of its effective time (the event time; a late event's is the
  customer's clock, as for its transitions).
- `retained:<period>`: customers in S at the start of the period who bought during it (each counted once);
  `cohort_orders:<period>` / `cohort_revenue:<period>`: their purchases (net amounts) in the period.
- `converted:<day>`: entries into S on that day followed by a purchase on that day or within the
  `conversion_days` UTC days after it (any later purchase; not the one that caused the entry).
- `churned:<day>`: moves into the churn segment on that day, counted for the segment the customer held just
  before the move in every grid (in the churn grid itself, the segment it left).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import NamedTuple

from segmentation.grids import GRID_ORDER
from segmentation.kpi_definitions import KpiConfig, period_of
from segmentation.state import CustomerState
from segmentation.transition import Transition

__all__ = ["Count", "Money", "Tracker", "segments_of", "track"]

Count = tuple[str, str, int]  # grid, field, delta
_FIELDS = CustomerState._fields
_SEG = tuple((grid, _FIELDS.index(f"seg_{grid}")) for grid in GRID_ORDER)


class Money(NamedTuple):
    """A purchase (orders 1) or a refund (orders 0): effective time, net amount in minor units."""

    at: datetime
    orders: int
    amount_minor: int


class Tracker(NamedTuple):
    """The marker kept with the customer (hash field `_kpi`)."""

    period: str = ""  # retention period of the customer's latest counted instant
    start: tuple[tuple[str, str | None], ...] = ()  # grid -> segment at the period start, if moved since
    bought: bool = False  # already counted in `retained` for `period`
    pending: tuple[tuple[str, str, date], ...] = ()  # entries (grid, segment, day) not yet converted
    fresh: bool = False  # in no segment at the period's start (a customer first seen in it): in no cohort


def segments_of(state: CustomerState) -> dict[str, str | None]:
    """Every grid's segment in the state (audiences as `audience:<name>`), for any grid the core has."""
    out: dict[str, str | None] = {grid: state[index] for grid, index in _SEG}  # type: ignore[misc]
    for name, segment in state.audiences:
        out[f"audience:{name}"] = segment
    return out


def track(
    tracker: Tracker,
    before: Mapping[str, str | None],
    transitions: Sequence[Transition],
    money: Money | None,
    cause: str | None,
    config: KpiConfig,
) -> tuple[Tracker, list[Count]]:
    """Counts of one step: `before` the segments before it, `transitions` its changes in order; `money` the
    purchase or refund it applied (counted before the changes whose cause is `cause`, the event's id)."""
    step = _Step(tracker, before, config)
    for t in transitions:
        if money is not None and t.cause == cause:
            step.money(money, [x for x in transitions if x.cause == cause])
            money = None
        step.transition(t)
    if money is not None:
        step.money(money, ())
    return step.tracker(), step.counts


class _Step:
    def __init__(self, tracker: Tracker, before: Mapping[str, str | None], config: KpiConfig) -> None:
        self.period, self.bought, self.fresh = tracker.period, tracker.bought, tracker.fresh
        self.start = dict(tracker.start)
        self.pending = list(tracker.pending)
        self.segments = dict(before)
        self.config = config
        self.window = config.conversion_days
        self.counts: list[Count] = []

    def tracker(self) -> Tracker:
        start = () if self.fresh else tuple(self.start.items())
        return Tracker(self.period, start, self.bought, tuple(self.pending), self.fresh)

    def _roll(self, day: date) -> None:
        period = period_of(day, self.config.retention_period)
        if period != self.period:
            self.period, self.start, self.bought = period, {}, False
            self.fresh = not any(self.segments.values())

    def _expire(self, day: date) -> None:
        """Entries more than the window before `day` can no longer convert."""
        window = self.window
        self.pending = [p for p in self.pending if (day - p[2]).days <= window]

    def transition(self, t: Transition) -> None:
        if t.to_segment is None:  # an erasure: the customer starts afresh if it comes back
            self.period, self.start, self.bought, self.pending = "", {}, False, []
            self.segments = {}
            return
        day = t.effective_at.date()
        self._roll(day)
        if not self.fresh:
            self.start.setdefault(t.grid, t.from_segment)
        config = self.config
        if t.grid == config.churn_grid and t.to_segment == config.churn_segment and t.from_segment:
            text = day.isoformat()
            for grid, segment in self.segments.items():
                if segment is not None:
                    self.counts.append((grid, f"{segment}:churned:{text}", 1))
        if self.pending:
            self._expire(day)
        self.pending.append((t.grid, t.to_segment, day))
        self.segments[t.grid] = t.to_segment

    def money(self, money: Money, own: Sequence[Transition]) -> None:
        """`own`: the event's own transitions (the segments it leaves the customer in)."""
        today = money.at.date()
        self._roll(today)
        counts, day = self.counts, today.isoformat()
        if money.orders:
            self._expire(today)
            for grid, segment, entered in self.pending:
                counts.append((grid, f"{segment}:converted:{entered.isoformat()}", 1))
            self.pending = []
        after = dict(self.segments)
        for t in own:
            after[t.grid] = t.to_segment
        for grid, now in after.items():
            if now is not None:
                if money.orders:
                    counts.append((grid, f"{now}:orders:{day}", money.orders))
                counts.append((grid, f"{now}:revenue:{day}", money.amount_minor))
        if self.fresh:  # in no cohort this period
            self.bought = self.bought or bool(money.orders)
            return
        period, first = self.period, money.orders and not self.bought
        for grid, current in self.segments.items():
            cohort = self.start.get(grid, current)
            if cohort is not None:
                if first:
                    counts.append((grid, f"{cohort}:retained:{period}", 1))
                if money.orders:
                    counts.append((grid, f"{cohort}:cohort_orders:{period}", money.orders))
                counts.append((grid, f"{cohort}:cohort_revenue:{period}", money.amount_minor))
        if money.orders:
            self.bought = True
