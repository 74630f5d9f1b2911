"""Read-side index deltas of one batch: membership, per-segment KPIs, day moves and per-customer history.

Computed in Python from the before/after mappings `write_for` already holds and from the batch's transitions,
aggregated per key so the commit script receives a short op list; the store applies them in the same fenced
script as the customer hashes (so indexes never drift from state, whatever crashes).

Rules (docs/read_side.md):
- membership and KPIs follow the customers' views (`state_mapping.readable_fields`: the hash's fields plus
  those it leaves absent, an audience's `not_member`): a customer is in segment S of grid G when its view has
  field `G` = S (`state_mapping.is_segment`: a grid's segment is under the grid's name; an empty value means
  no segment); KPIs are the sums of `monetary_minor` and `orders` over
  the members, `customers` their count. An erased (deleted) customer leaves every segment.
- membership is kept as bits at the customer's ordinal (streams/store/membership.py): each lifetime of a
  customer (creation to erasure) takes the partition's next ordinal in log order (`began`), so ordinals do
  not depend on how the log was cut into batches; a customer erased and re-created within one batch leaves
  every segment at its old ordinal and enters them again at its new one.
- day moves follow the transitions: `<from>><to>:<day>` counts each (from, to) pair per UTC day of its
  effective time ('-' for no segment; the day kept as its weekday in its ISO week's key,
  streams/store/weeks.py), so the dashboard's transition matrix between two dates is a sum of fields, not a
  scan, and the moves add up to the transitions published on the topic. The day flows (entries into and
  exits from each segment) are derived from them on read (`weeks.flows_of_moves`), not kept.
- history: each customer's transitions of the batch are kept here, oldest first, and appended to the coded
  `history` field of its hash by `streams.store.writes.index_write` (streams/store/history_format.py); an
  erasure wipes the history (privacy) and whatever follows it in the same batch starts a fresh one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from segmentation.instants import day_text
from segmentation.kpi_figures import PERIOD_METRICS
from segmentation.kpi_tracking import Tally, counts
from segmentation.state_mapping import is_segment
from segmentation.transition import Transition
from streams.store.day_names import period_field
from streams.store.weeks import stored_field, week_of

ORDINAL: Final = "_o"  # the customer hash field holding its ordinal (streams/store/membership.py)
METRICS: Final = ("customers", "revenue_minor", "orders")
CLEARED: Final = -(1 << 63)
"""The meta's `sweeping` once the publication it marked is committed: no instant (year 1 is -6.2e16 µs), so a
mark that stays always means a publication no commit followed (`streams/worker/sweep_mark.py`)."""


@dataclass
class IndexDelta:
    """Everything one batch changes on the read side of one partition (keys are added by the store)."""

    members_add: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    members_remove: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    kpis: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    # (grid, from, to, day): formatted into `<from>><to>:<weekday>` fields of the day's ISO week once per
    # batch (`move_fields`)
    moves: dict[tuple[str, str | None, str | None, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )
    history: dict[str, list[Transition]] = field(default_factory=dict)  # customer -> its own, oldest first
    history_reset: set[str] = field(default_factory=set)  # customers whose stored history is wiped first
    history_size: int = 64  # entries kept per customer (settings.history_size), the oldest dropped
    # per-segment KPI counters (`d:<grid>:<week>`, `r:<grid>`, see streams/store/kpi_ops.py): the batch's
    # tally, expanded and formatted into fields once per batch (`daily_fields`)
    daily: Tally = field(default_factory=dict)
    # grid crossings (`x:<a>|<b>`)
    cross: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    crosstabs: tuple[tuple[str, str], ...] = ()  # the grid pairs whose crossing is kept (definitions)
    created: list[str] = field(default_factory=list)  # a customer per lifetime begun, in log order
    _began: set[str] = field(default_factory=set)
    # every customer's before- and after-mapping (references, not copies): when it commits, the Redis store
    # reads the stored ordinals (`_o`) from the first to declare the ordinal chunks the commit writes, and
    # then writes the ordinals into the second (commit.lua, "ordinal map keys"). Read at commit time, not
    # here: a worker prepares the next batch before this one's commit has told the cache its new ordinals.
    befores: dict[str, Mapping[str, str]] = field(default_factory=dict)
    mappings: dict[str, Mapping[str, str]] = field(default_factory=dict)
    undeclared: set[int] = field(default_factory=set)  # chunks a refused attempt named (kept for retries)
    # customer -> epoch µs its erasure covers, where it changed: the tombstones (streams/store/erasures.py)
    erasures: dict[str, int] = field(default_factory=dict)
    swept_us: int | None = None  # the meta's `sweeping`: a sweep about to publish, or CLEARED (sweep_mark)

    def began(self, customer_id: str) -> None:
        """An event created the customer (blank state before, not after): it takes the next ordinal."""
        self.created.append(customer_id)
        self._began.add(customer_id)

    def is_empty(self) -> bool:
        return not (
            self.members_add
            or self.members_remove
            or self.created
            or self.kpis
            or self.moves
            or self.daily
            or self.cross
            or self.erasures
            or self.swept_us is not None
        )

    # -- from mappings ----------------------------------------------------------------------------------
    def customer(
        self,
        customer_id: str,
        before: Mapping[str, str] | None,
        after: Mapping[str, str],
        changed: Iterable[str] = (),
    ) -> None:
        """One customer's move: `after` is empty for a deleted customer; `changed` names the fields that
        differ (the write's set and removed fields), so an unchanged grid costs nothing."""
        old = before or {}
        if old:
            self.befores[customer_id] = old
        if after:
            self.mappings[customer_id] = after
        m0, o0 = _int(old.get("monetary_minor")), _int(old.get("orders"))
        m1, o1 = _int(after.get("monetary_minor")), _int(after.get("orders"))
        money = m0 != m1 or o0 != o1
        # re-created in this batch over a stored hash: every segment moves to the new ordinal
        renewed = bool(old) and bool(after) and customer_id in self._began
        if not old or not after or money or renewed:
            fields: Iterable[str] = {k: None for m in (old, after) for k in m if is_segment(k)}
        else:
            fields = [k for k in changed if is_segment(k)]
        kpis = self.kpis
        for key in fields:
            s0, s1 = old.get(key) or None, after.get(key) or None
            grid = key
            if s0 == s1:
                if s0 is not None and renewed:
                    self.members_remove[(grid, s0)].append(customer_id)
                    self.members_add[(grid, s0)].append(customer_id)
                if s0 is not None and money:
                    if m1 != m0:
                        kpis[(grid, s0, "revenue_minor")] += m1 - m0
                    if o1 != o0:
                        kpis[(grid, s0, "orders")] += o1 - o0
                continue
            if s0 is not None:
                self.members_remove[(grid, s0)].append(customer_id)
                kpis[(grid, s0, "customers")] -= 1
                kpis[(grid, s0, "revenue_minor")] -= m0
                kpis[(grid, s0, "orders")] -= o0
            if s1 is not None:
                self.members_add[(grid, s1)].append(customer_id)
                kpis[(grid, s1, "customers")] += 1
                kpis[(grid, s1, "revenue_minor")] += m1
                kpis[(grid, s1, "orders")] += o1
        if self.crosstabs:
            self._cross(old, after, (m0, o0, m1, o1), money)

    def _cross(
        self, old: Mapping[str, str], after: Mapping[str, str], figures: tuple[int, ...], money: bool
    ) -> None:
        """The customer's cell in each kept crossing follows its two segments, like the KPIs."""
        m0, o0, m1, o1 = figures
        cross = self.cross
        for a, b in self.crosstabs:
            cell0 = (old.get(a) or None, old.get(b) or None)
            cell1 = (after.get(a) or None, after.get(b) or None)
            if cell0 == cell1 and not money:
                continue
            key = f"{a}|{b}"
            if cell0[0] and cell0[1]:
                cross[(key, f"{cell0[0]}|{cell0[1]}:customers")] -= 1
                cross[(key, f"{cell0[0]}|{cell0[1]}:revenue_minor")] -= m0
                cross[(key, f"{cell0[0]}|{cell0[1]}:orders")] -= o0
            if cell1[0] and cell1[1]:
                cross[(key, f"{cell1[0]}|{cell1[1]}:customers")] += 1
                cross[(key, f"{cell1[0]}|{cell1[1]}:revenue_minor")] += m1
                cross[(key, f"{cell1[0]}|{cell1[1]}:orders")] += o1

    # -- from transitions -------------------------------------------------------------------------------
    def transitions(
        self, transitions: Iterable[Transition], erasures: Collection[tuple[str, str]] = ()
    ) -> None:
        """Day moves and history; `erasures`: (customer, event id) of the erasures applied, whose exits wipe
        the customer's history (a grid left by a definitions change is a transition like the others)."""
        moves, history = self.moves, self.history
        at, day = None, ""
        for t in transitions:
            if t.effective_at is not at:  # an event's (or a due instant's) transitions share one datetime
                at = t.effective_at
                day = day_text(at.date())
            grid, before, after = t.grid, t.from_segment, t.to_segment
            moves[(grid, before, after, day)] += 1
            cid = t.customer_id
            if after is None and (cid, t.cause) in erasures:
                history.pop(cid, None)
                self.history_reset.add(cid)
                continue
            entries = history.get(cid)
            if entries is None:
                entries = history[cid] = []
            entries.append(t)

    def erased(self, customer_id: str) -> None:
        """The customer is deleted: no history may survive it (privacy)."""
        self.history.pop(customer_id, None)
        self.history_reset.add(customer_id)

    # -- grouped for the store --------------------------------------------------------------------------
    def kpi_fields(self) -> dict[str, list[tuple[str, int]]]:
        """grid -> [(field, delta)], zero deltas dropped."""
        out: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for (grid, segment, metric), delta in self.kpis.items():
            if delta:
                out[grid].append((f"{segment}:{metric}", delta))
        return out

    def daily_fields(
        self,
    ) -> tuple[dict[tuple[str, str], list[tuple[str, int]]], dict[tuple[str, str], list[tuple[str, int]]]]:
        """The KPI counters, zero deltas dropped: (grid, ISO week) -> [(`<segment>:<metric>:<weekday>` coded,
        delta)] of the day metrics, and (grid, year) -> [(`<segment>:<metric>:<period>` coded, delta)] of the
        retention periods (the year: the period name's first four characters; `day_names.period_field`)."""
        days: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
        periods: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
        for (grid, segment, metric, when), delta in counts(self.daily).items():
            if delta:
                if metric in PERIOD_METRICS:
                    periods[(grid, when[:4])].append((period_field(segment, metric, when), delta))
                else:
                    week, weekday = week_of(when)
                    days[(grid, week)].append((stored_field(f"{segment}:{metric}", weekday), delta))
        return days, periods

    def cross_fields(self) -> dict[str, list[tuple[str, int]]]:
        """`<a>|<b>` -> [(field, delta)] of the crossings, zero deltas dropped."""
        return _grouped(self.cross)

    def move_fields(self) -> dict[tuple[str, str], list[tuple[str, int]]]:
        """(grid, ISO week) -> [(`<from>><to>:<weekday>` coded, count)] ('-': no segment)."""
        out: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
        for (grid, before, after, day), count in self.moves.items():
            week, weekday = week_of(day)
            out[(grid, week)].append((stored_field(f"{before or '-'}>{after or '-'}", weekday), count))
        return out


def _grouped(counters: Mapping[tuple[str, str], int]) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (name, field_name), delta in counters.items():
        if delta:
            out[name].append((field_name, delta))
    return out


def _int(text: str | None) -> int:
    return int(text) if text else 0
