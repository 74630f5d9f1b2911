"""The KPI counters the worker's batches write equal a brute-force count over every customer's timeline (a
scan, which the read side never does): retention cohorts, conversion, churn, orders and revenue per segment,
on a sample stream with refunds, late events and erasures, whatever the batch size."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any

import pytest

from segmentation import CustomerState, Definitions, apply, parse_event
from segmentation.kpi_definitions import period_bounds, period_of
from segmentation.kpi_tracking import segments_of
from streams.sample import generator as sample
from streams.store.weeks import by_grid
from streams.worker.batch import Record, apply_batch, decode


def _lines() -> list[bytes]:
    """A sample stream where every 37th line arrives 400 lines late (late events for their customers)."""
    lines = list(sample.generate(sample.SampleSpec(customers=300, days=200, seed=9, erasure_share=0.05)))
    for n in range(len(lines) - 401, 0, -37):
        lines.insert(n + 400, lines.pop(n))
    return lines


def _timelines(lines: list[bytes], d: Definitions) -> list[list[tuple[Any, ...]]]:
    """Per customer identity (an erasure starts a new one), its items in processing order:
    ("t", grid, from, to, at, cause) and ("m", at, orders, amount, segments before, segments after)."""
    states: dict[str, CustomerState] = {}
    identity: dict[str, list[tuple[Any, ...]]] = {}
    out: list[list[tuple[Any, ...]]] = []
    for line in lines:
        try:
            event = parse_event(line)
            state = states.get(event.customer_id) or CustomerState.new(event.customer_id)
            outcome = apply(state, event, d)
        except Exception:
            continue
        cid = event.customer_id
        states[cid] = outcome.state
        items = identity.setdefault(cid, [])
        if not items:
            out.append(items)
        segs = segments_of(state)
        new = outcome.state
        own = [t for t in outcome.transitions if t.cause == event.event_id]
        for t in outcome.transitions:
            if t.cause != event.event_id:
                items.append(("t", t.grid, t.from_segment, t.to_segment, t.effective_at, t.cause))
                segs[t.grid] = t.to_segment
        money = None
        if event.type == "purchase" and new.orders != state.orders:
            money = (1, new.gross_minor - state.gross_minor)
        elif event.type == "refund" and new.refunds != state.refunds:
            money = (0, state.refunded_minor - new.refunded_minor)
        if money is not None:
            after = dict(segs)
            after.update({t.grid: t.to_segment for t in own})
            items.append(("m", new.clock, money[0], money[1], dict(segs), after))
        for t in own:
            items.append(("t", t.grid, t.from_segment, t.to_segment, t.effective_at, t.cause))
        if any(t.to_segment is None for t in own):
            identity[cid] = []  # erased: whatever comes next is a new customer
    return out


def _brute_force(timelines: list[list[tuple[Any, ...]]], d: Definitions) -> Counter[tuple[str, str]]:
    config, unit = d.kpis, d.kpis.retention_period
    got: Counter[tuple[str, str]] = Counter()
    for items in timelines:
        purchases = [i for i in items if i[0] == "m"]
        moves = [i for i in items if i[0] == "t"]
        for m in purchases:
            day = m[1].date().isoformat()
            for grid, segment in m[5].items():
                if segment is not None:
                    got[(grid, f"{segment}:orders:{day}")] += m[2]
                    got[(grid, f"{segment}:revenue:{day}")] += m[3]
        # cohorts: the segment at the start of the period of each purchase
        for period in {period_of(m[1].date(), unit) for m in purchases}:
            start = datetime.combine(period_bounds(period)[0], datetime.min.time(), tzinfo=m[1].tzinfo)
            before = [t for t in moves if t[4] < start]
            if not before:
                continue  # first seen during the period: in no cohort
            at_start: dict[str, str | None] = {}
            for t in before:
                at_start[t[1]] = t[3]
            inside = [m for m in purchases if period_of(m[1].date(), unit) == period]
            for grid, segment in at_start.items():
                if segment is None:
                    continue
                if any(m[2] for m in inside):
                    got[(grid, f"{segment}:retained:{period}")] += 1
                for m in inside:
                    got[(grid, f"{segment}:cohort_orders:{period}")] += m[2]
                    got[(grid, f"{segment}:cohort_revenue:{period}")] += m[3]
        # conversion: an entry followed, later in the timeline, by a purchase within the window of days
        for n, item in enumerate(items):
            if item[0] != "t" or item[3] is None:
                continue
            entered: date = item[4].date()
            later = [m for m in items[n + 1 :] if m[0] == "m" and m[2]]
            if later and (later[0][1].date() - entered).days <= config.conversion_days:
                got[(item[1], f"{item[3]}:converted:{entered.isoformat()}")] += 1
        # churn: the segments held just before each move into the churn segment
        current: dict[str, str | None] = {}
        for item in items:
            if item[0] != "t":
                continue
            if (item[1], item[3]) == (config.churn_grid, config.churn_segment) and item[2]:
                for grid, segment in current.items():
                    if segment is not None:
                        got[(grid, f"{segment}:churned:{item[4].date().isoformat()}")] += 1
            current[item[1]] = item[3]
    return +got


@pytest.mark.parametrize("batch", [1_000_000, 257])
def test_batched_counters_equal_a_brute_force_count(batch: int) -> None:
    d = Definitions.default()
    lines = _lines()
    want = _brute_force(_timelines(lines, d), d)
    records = [
        Record("t", 0, i, (sample.recover_customer_id(x) or "").encode(), x) for i, x in enumerate(lines)
    ]
    stored: dict[str, Any] = {}
    got: Counter[tuple[str, str]] = Counter()
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        result = apply_batch(chunk, decode(chunk), stored, d)
        stored.update(result.states)
        for cid in [w.customer_id for w in result.writes if w.delete]:
            stored.pop(cid, None)
        for grid, pairs in by_grid(*result.index.daily_fields()).items():
            for name, delta in pairs:
                got[(grid, name)] += delta
    got = +got
    metrics: defaultdict[str, int] = defaultdict(int)
    for (_, name), value in want.items():
        metrics[name.split(":")[-2]] += value
    assert all(metrics[m] > 0 for m in ("orders", "retained", "converted", "churned", "cohort_orders"))
    assert got == want
