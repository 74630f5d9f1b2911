"""Index deltas from before/after mappings and transitions; `as of` answers from a history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.transition import Transition
from streams.read.history import History, HistoryEntry, segment_at
from streams.store.indexes import IndexDelta
from streams.store.replies import text
from streams.store.weeks import (
    by_grid,
    day_field,
    flat_flows,
    flows_of_moves,
    flows_of_week_rows,
    moves_of_week_rows,
    stored_field,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(lifecycle: str, rfm: str, money: int, orders: int) -> dict[str, str]:
    return {
        "lifecycle": lifecycle,
        "rfm": rfm,
        "monetary_minor": str(money),
        "orders": str(orders),
        "email:sent": "0",
    }


def test_a_new_customer_enters_every_segment_with_its_figures() -> None:
    d = IndexDelta()
    d.customer("c1", None, row("new", "", 500, 1))
    assert dict(d.members_add) == {("lifecycle", "new"): ["c1"]}
    assert d.kpi_fields() == {
        "lifecycle": [("new:customers", 1), ("new:revenue_minor", 500), ("new:orders", 1)]
    }


def test_a_move_exits_the_old_segment_with_the_old_figures_and_enters_with_the_new() -> None:
    d = IndexDelta()
    before, after = row("new", "x", 500, 1), row("active", "x", 800, 2)
    d.customer("c1", before, after, ["lifecycle", "monetary_minor", "orders"])
    assert dict(d.members_remove) == {("lifecycle", "new"): ["c1"]}
    assert dict(d.members_add) == {("lifecycle", "active"): ["c1"]}
    k = {key: v for key, v in d.kpis.items() if v}
    assert k == {
        ("lifecycle", "new", "customers"): -1,
        ("lifecycle", "new", "revenue_minor"): -500,
        ("lifecycle", "new", "orders"): -1,
        ("lifecycle", "active", "customers"): 1,
        ("lifecycle", "active", "revenue_minor"): 800,
        ("lifecycle", "active", "orders"): 2,
        ("rfm", "x", "revenue_minor"): 300,
        ("rfm", "x", "orders"): 1,
    }


def test_unchanged_segments_and_money_cost_nothing_and_deletion_exits_everything() -> None:
    d = IndexDelta()
    d.customer("c1", row("new", "x", 5, 1), row("new", "x", 5, 1), ["email:sent"])
    assert d.is_empty()
    d.customer("c1", row("new", "x", 5, 1), {})
    assert dict(d.members_remove) == {("lifecycle", "new"): ["c1"], ("rfm", "x"): ["c1"]}
    assert d.kpis[("rfm", "x", "revenue_minor")] == -5


def t(cid: str, grid: str, a: str | None, b: str | None, at: datetime, cause: str = "e1") -> Transition:
    return Transition.create(cid, grid, a, b, at, cause, "v1", {"rule": "r"})


def test_flows_follow_transitions_and_an_erasure_resets_the_history() -> None:
    d = IndexDelta()
    d.transitions(
        [
            t("c1", "lifecycle", None, "new", T0),
            t("c1", "lifecycle", "new", "active", T0 + timedelta(days=1)),
            t("c2", "lifecycle", None, "new", T0),
            t("c2", "lifecycle", "new", None, T0 + timedelta(hours=1), "erase"),
            t("c2", "lifecycle", None, "new", T0 + timedelta(hours=2), "again"),
        ],
        {("c2", "erase")},  # the erasures applied: (customer, event id)
    )
    moves = dict(by_grid(d.move_fields())["lifecycle"])  # 2026-01-01: Thursday (4) of 2026-W01
    assert moves == {"->new:2026-01-01": 3, "new>active:2026-01-02": 1, "new>-:2026-01-01": 1}
    assert flows_of_moves(moves) == {  # the day flows, derived (no key of their own)
        "new:in:2026-01-01": 3,
        "new:out:2026-01-02": 1,
        "active:in:2026-01-02": 1,
        "new:out:2026-01-01": 1,
    }
    assert [(x.from_segment, x.to_segment) for x in d.history["c1"]] == [(None, "new"), ("new", "active")]
    assert [x.cause for x in d.history["c2"]] == ["again"] and d.history_reset == {"c2"}
    d.erased("c1")
    assert "c1" not in d.history and "c1" in d.history_reset
    left = IndexDelta()  # a grid left by a definitions change is no erasure: kept in the history
    left.transitions([t("c3", "audience:gone", "member", None, T0, "definitions")], {("c3", "erase")})
    assert [x.to_segment for x in left.history["c3"]] == [None] and not left.history_reset


def entry(grid: str, a: str | None, b: str | None, at: datetime) -> HistoryEntry:
    return HistoryEntry(grid=grid, from_segment=a, to_segment=b, effective_at=at, cause="x", id="i", why={})


def test_as_of_known_not_yet_and_beyond_a_trimmed_history() -> None:
    entries = [
        entry("lifecycle", None, "new", T0),
        entry("lifecycle", "new", "active", T0 + timedelta(days=10)),
    ]
    h = History(customer_id="c", entries=entries, trimmed=False)
    assert segment_at(h, "lifecycle", T0 - timedelta(seconds=1)).status == "not_yet"
    at = segment_at(h, "lifecycle", T0 + timedelta(days=5))
    assert (at.status, at.segment, at.since) == ("known", "new", T0)
    assert segment_at(h, "lifecycle", T0 + timedelta(days=10)).segment == "active"
    cut = History(customer_id="c", entries=entries[1:], trimmed=True)
    assert segment_at(cut, "lifecycle", T0 + timedelta(days=5)).status == "beyond_history"
    assert segment_at(cut, "lifecycle", T0 + timedelta(days=11)).segment == "active"


_SEGMENTS = ("-", "new", "active", "at_risk", "lost", "reactivated", "a:b")  # ':' may be in names, '>' not
_CELLS = st.lists(
    st.tuples(
        st.integers(0, 3),  # partition
        st.sampled_from(("2025-W52", "2026-W01", "2026-W02", "2020-W53")),  # across year ends
        st.sampled_from(_SEGMENTS),
        st.sampled_from(_SEGMENTS),
        st.sampled_from("1234567"),
        st.integers(0, 5),
    ),
    max_size=60,
)
Cells = list[tuple[int, str, str, str, str, int]]


def _week_rows(cells: Cells) -> dict[tuple[int, str], dict[str | bytes, str | bytes]]:
    """(partition, week) -> the `t:` week key's fields as Redis replies them."""
    rows: dict[tuple[int, str], dict[str | bytes, str | bytes]] = {}
    for partition, week, a, b, weekday, count in cells:
        if a == b:
            continue
        raw = partition % 2 == 1  # replies in bytes (a client without decode_responses) or in text
        stored = stored_field(f"{a}>{b}", weekday)
        row = rows.setdefault((partition, week), {})
        row[stored.encode() if raw else stored] = str(count).encode() if raw else str(count)
    return rows


@settings(max_examples=200, deadline=None)
@given(_CELLS)
def test_flows_of_week_rows_are_the_flows_of_the_day_named_moves_summed(cells: Cells) -> None:
    """The readers' derivation (summed by stored name, each decoded once) gives exactly the flows of every
    partition's moves named by their day, summed: `flows_of_moves`, the definition."""
    rows = _week_rows(cells)
    expected: dict[str, dict[str, dict[str, int]]] = {}
    for (_, week), row in rows.items():
        named_row = {day_field(week, text(k)): int(v) for k, v in row.items()}
        for name, value in flows_of_moves(named_row).items():
            rest, _, day = name.rpartition(":")
            segment, _, direction = rest.rpartition(":")
            cell = expected.setdefault(day, {}).setdefault(segment, {"in": 0, "out": 0})
            cell[direction] += value
    got = flows_of_week_rows([(week, row) for (_, week), row in rows.items()])
    assert got == expected
    everything: dict[str, int] = {}  # every row's moves named by their day, summed over the partitions
    for (_, week), row in rows.items():
        for k, v in row.items():
            name = day_field(week, text(k))
            everything[name] = everything.get(name, 0) + int(v)
    assert flat_flows(got) == flows_of_moves(everything)


@settings(max_examples=200, deadline=None)
@given(
    _CELLS,
    st.sampled_from(("", "2025-12-24", "2025-12-28", "2026-01-01")),
    st.sampled_from(("2025-12-27", "2026-01-04", "9999-12-31")),
)
def test_moves_of_week_rows_are_the_day_named_moves_of_the_range_summed(
    cells: Cells, first: str, last: str
) -> None:
    """The transition matrix's sums (each distinct stored name decoded once) equal the day-named moves of
    the range summed over the partitions."""
    rows = _week_rows(cells)
    expected: dict[str, int] = {}
    for (_, week), row in rows.items():
        for k, v in row.items():
            name = day_field(week, text(k))
            if first <= name[-10:] <= last:
                expected[name[:-11]] = expected.get(name[:-11], 0) + int(v)
    assert moves_of_week_rows([(week, row) for (_, week), row in rows.items()], first, last) == expected
