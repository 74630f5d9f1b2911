"""Per-segment KPI counts of one customer's step (an event, or time passing), and the per-customer marker
that keeps them exact: which segments the customer held at the start of the current retention period,
whether it was already counted as a buyer of that period, and its entries still waiting for a purchase.

Every count is a (grid, segment, metric, day or period) key with its delta; the read side adds it to
`d:<grid>` as the field `<segment>:<metric>:<day or period>`. A step does not make them one by one (a purchase
touches ~55): it adds one `Tally` entry per purchase, cohort, churn or conversion (metrics, day or period, the
customer's (grid, segment) pairs) -> summed values, so the customers of a batch sharing segments share one
entry; `counts` expands a batch's tally once, in the order the counts were first made.
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
from datetime import date, datetime, timedelta
from typing import NamedTuple

from segmentation.grids import GRID_ORDER
from segmentation.instants import day_text
from segmentation.kpi_definitions import KpiConfig, period_of
from segmentation.state import CustomerState
from segmentation.transition import Transition

__all__ = ["CountKey", "Counts", "Money", "Tally", "Tracker", "counts", "segments_of", "track"]

CountKey = tuple[str, str, str, str]  # grid, segment, metric, day or period (ISO text)
Counts = dict[CountKey, int]  # summed deltas, in first-counted order
# (metrics, day or period, flat (grid, segment, grid, segment...)) -> one summed value per metric
TallyKey = tuple[tuple[str, ...], str, tuple[str, ...]]
Tally = dict[TallyKey, list[int]]
_SALES = ("orders", "revenue")
_REFUND = ("revenue",)
_RETAINED = ("retained", "cohort_orders", "cohort_revenue")
_COHORT = ("cohort_orders", "cohort_revenue")
_COHORT_REFUND = ("cohort_revenue",)
_CHURNED = ("churned",)
_CONVERTED = ("converted",)
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
    tally: Tally | None = None,
    erasure: bool = False,
) -> tuple[Tracker, Tally]:
    """Counts of one step: `before` the segments before it, `transitions` its changes in order; `money` the
    purchase or refund it applied (counted before the changes whose cause is `cause`, the event's id).
    `tally`: the batch's so far, added to and returned (a new one when None). `erasure`: the step is an
    erasure, whose own exits (cause `cause`) forget the tracker; a grid left otherwise (a definitions change
    removing an audience or the clv grid) is only left."""
    step = _Step(tracker, before, config, {} if tally is None else tally)
    for t in transitions:
        if money is not None and t.cause == cause:
            step.money(money, [x for x in transitions if x.cause == cause])
            money = None
        step.transition(t, erasure and t.cause == cause)
    if money is not None:
        step.money(money, ())
    return step.tracker(), step.tally


def counts(tally: Tally) -> Counts:
    """Each count of the tally, summed per key, in the order the steps first made it (zeros kept)."""
    out: Counts = {}
    for (metrics, when, pairs), values in tally.items():
        for i in range(0, len(pairs), 2):
            grid, segment = pairs[i], pairs[i + 1]
            for j in range(len(metrics)):
                key = (grid, segment, metrics[j], when)
                out[key] = out.get(key, 0) + values[j]
    return out


class _Step:
    def __init__(
        self, tracker: Tracker, before: Mapping[str, str | None], config: KpiConfig, tally: Tally
    ) -> None:
        self.period, self.bought, self.fresh = tracker.period, tracker.bought, tracker.fresh
        self.start = dict(tracker.start)
        self.pending = list(tracker.pending)
        self.segments = dict(before)
        self.config = config
        self.window = timedelta(days=config.conversion_days)
        self.tally = tally
        # the day last rolled to and expired at: an event's transitions share one, so each is done once
        self.rolled: date | None = None
        self.expired: date | None = None

    def add(self, metrics: tuple[str, ...], when: str, pairs: tuple[str, ...], values: list[int]) -> None:
        key = (metrics, when, pairs)
        known = self.tally.get(key)
        if known is None:
            self.tally[key] = values
        else:
            for i, value in enumerate(values):
                known[i] += value

    def tracker(self) -> Tracker:
        start = () if self.fresh else tuple(self.start.items())
        return Tracker(self.period, start, self.bought, tuple(self.pending), self.fresh)

    def _roll(self, day: date) -> None:
        if day == self.rolled:
            return
        self.rolled = day
        period = period_of(day, self.config.retention_period)
        if period != self.period:
            self.period, self.start, self.bought = period, {}, False
            self.fresh = not any(self.segments.values())

    def _expire(self, day: date) -> None:
        """Entries more than the window before `day` can no longer convert (the entries added since the
        last expiry on the same day are of that day: none to drop)."""
        if day == self.expired:
            return
        self.expired = day
        oldest = day - self.window
        self.pending = [p for p in self.pending if p[2] >= oldest]

    def transition(self, t: Transition, erases: bool = False) -> None:
        if t.to_segment is None:
            if erases:  # the customer starts afresh if it comes back
                self.period, self.start, self.bought, self.pending = "", {}, False, []
                self.segments, self.rolled = {}, None
            else:  # its grid is gone from the definitions
                self.segments.pop(t.grid, None)
            return
        day = t.effective_at.date()
        self._roll(day)
        if not self.fresh:
            self.start.setdefault(t.grid, t.from_segment)
        config = self.config
        if t.grid == config.churn_grid and t.to_segment == config.churn_segment and t.from_segment:
            self.add(_CHURNED, day_text(day), _pairs(self.segments), [1])
        self._expire(day)  # (so every entry added since the last expiry is of its day)
        self.pending.append((t.grid, t.to_segment, day))
        self.segments[t.grid] = t.to_segment

    def money(self, money: Money, own: Sequence[Transition]) -> None:
        """`own`: the event's own transitions (the segments it leaves the customer in)."""
        today = money.at.date()
        self._roll(today)
        orders, amount = money.orders, money.amount_minor
        if orders:
            self._expire(today)
            last, text = None, ""
            for grid, segment, entered in self.pending:
                if entered != last:
                    last, text = entered, day_text(entered)
                self.add(_CONVERTED, text, (grid, segment), [1])
            self.pending = []
        after = dict(self.segments)
        for t in own:
            after[t.grid] = t.to_segment
        day = day_text(today)
        if orders:
            self.add(_SALES, day, _pairs(after), [orders, amount])
        else:
            self.add(_REFUND, day, _pairs(after), [amount])
        if self.fresh:  # in no cohort this period
            self.bought = self.bought or bool(orders)
            return
        start = self.start
        cohort = _pairs({grid: start.get(grid, current) for grid, current in self.segments.items()})
        if orders and not self.bought:
            self.add(_RETAINED, self.period, cohort, [1, orders, amount])
        elif orders:
            self.add(_COHORT, self.period, cohort, [orders, amount])
        else:
            self.add(_COHORT_REFUND, self.period, cohort, [amount])
        if orders:
            self.bought = True


def _pairs(segments: Mapping[str, str | None]) -> tuple[str, ...]:
    """`grid, segment, ...` of the grids with a segment, in the mapping's order."""
    flat: list[str] = []
    for grid, segment in segments.items():
        if segment is not None:
            flat += (grid, segment)
    return tuple(flat)
