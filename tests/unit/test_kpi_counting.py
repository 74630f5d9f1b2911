"""Per-segment KPI definitions, counting and derivations (pure): exact counts for scripted steps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from segmentation import Definitions, DefinitionsError
from segmentation.kpi_definitions import KpiConfig, period_bounds, period_of, periods_within
from segmentation.kpi_figures import crosstab_cells, segment_figures
from segmentation.kpi_tracking import Money, Tally, Tracker, counts, segments_of
from segmentation.kpi_tracking import track as track_tally
from segmentation.state import CustomerState
from segmentation.transition import Transition

GRIDS = Definitions.default().grid_segments
CONFIG = KpiConfig()


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def track(*args: object) -> tuple[Tracker, list[tuple[str, str, int]]]:
    """The step's counts as the stored `d:<grid>` fields: (grid, `<segment>:<metric>:<when>`, delta)."""
    tracker, tally = track_tally(*args)  # type: ignore[arg-type]
    return tracker, [(g, f"{s}:{m}:{w}", d) for (g, s, m, w), d in counts(tally).items()]


def move(grid: str, old: str | None, new: str | None, when: datetime, cause: str = "time") -> Transition:
    return Transition.create("c", grid, old, new, when, cause, "v1", {})


# -- definitions --------------------------------------------------------------------------------------------
def test_defaults_and_a_custom_section_load() -> None:
    assert Definitions.default().kpis == KpiConfig(
        30, "lifecycle", "lost", "month", (("lifecycle", "value"),)
    )
    raw = {"conversion_days": 7, "churn": "rfm.lost", "retention_period": "week"}
    custom = KpiConfig.from_mapping({**raw, "crosstabs": [["rfm", "value"], ["value", "rfm"]]}, GRIDS)
    assert custom == KpiConfig(7, "rfm", "lost", "week", (("rfm", "value"),))  # one pair, either way round


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"oops": 1}, "unknown keys ['oops']"),
        ({"conversion_days": 0}, "between 1 and 3650"),
        ({"churn": "lifecycle.gone"}, "is not <grid>.<segment>"),
        ({"churn": "nogrid.lost"}, "is not <grid>.<segment>"),
        ({"retention_period": "year"}, "one of day, week, month"),
        ({"crosstabs": [["lifecycle"]]}, "not a pair"),
        ({"crosstabs": [["lifecycle", "lifecycle"]]}, "not a pair"),
        ({"crosstabs": [["lifecycle", "nope"]]}, "not a pair"),
        ({"crosstabs": ["lifecycle"]}, "not a pair"),
    ],
)
def test_a_bad_section_is_refused_naming_the_key(raw: dict[str, object], words: str) -> None:
    with pytest.raises(DefinitionsError, match="kpis"):
        KpiConfig.from_mapping(raw, GRIDS)
    with pytest.raises(DefinitionsError) as caught:
        KpiConfig.from_mapping(raw, GRIDS)
    assert words in str(caught.value)


def test_periods_name_and_bound_days_weeks_and_months() -> None:
    day = date(2026, 12, 31)
    assert [period_of(day, u) for u in ("day", "week", "month")] == ["2026-12-31", "2026-W53", "2026-12"]
    assert period_bounds("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
    assert period_bounds("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert period_bounds("2026-W10") == (date(2026, 3, 2), date(2026, 3, 8))
    assert period_bounds("2026-03-05") == (date(2026, 3, 5), date(2026, 3, 5))
    assert periods_within(date(2026, 1, 15), date(2026, 4, 30), "month") == ["2026-02", "2026-03", "2026-04"]
    assert periods_within(date(2026, 3, 3), date(2026, 3, 16), "week") == ["2026-W11"]
    early = date(999, 3, 5)  # before year 1000 (an earliest_event_time set that far back): four digits
    assert [period_of(early, u) for u in ("day", "week", "month")] == ["0999-03-05", "0999-W10", "0999-03"]
    assert period_bounds("0999-W10") == (date(999, 3, 4), date(999, 3, 10))


# -- counting ---------------------------------------------------------------------------------------------
def test_segments_of_lists_every_grid_and_audience() -> None:
    state = CustomerState.new("c")._replace(seg_lifecycle="new", audiences=(("vip", "member"),))
    got = segments_of(state)
    assert got["lifecycle"] == "new" and got["rfm"] is None and got["audience:vip"] == "member"


def test_a_purchase_counts_for_its_segments_its_cohort_and_converts_recent_entries() -> None:
    before = {"lifecycle": "active", "value": "low"}
    entered = move("lifecycle", "active", "at_risk", at("2026-03-01"))
    tracker, counts = track(Tracker(), before, [entered], None, None, CONFIG)
    assert counts == [] and tracker.period == "2026-03" and tracker.start == (("lifecycle", "active"),)
    assert tracker.pending == (("lifecycle", "at_risk", date(2026, 3, 1)),)
    own = move("lifecycle", "at_risk", "reactivated", at("2026-03-10"), cause="e2")
    buy = Money(at("2026-03-10"), 1, 2000)
    tracker, counts = track(tracker, {"lifecycle": "at_risk", "value": "low"}, [own], buy, "e2", CONFIG)
    assert sorted(counts) == sorted(
        [
            ("lifecycle", "at_risk:converted:2026-03-01", 1),
            ("lifecycle", "reactivated:orders:2026-03-10", 1),
            ("lifecycle", "reactivated:revenue:2026-03-10", 2000),
            ("value", "low:orders:2026-03-10", 1),
            ("value", "low:revenue:2026-03-10", 2000),
            ("lifecycle", "active:retained:2026-03", 1),
            ("lifecycle", "active:cohort_orders:2026-03", 1),
            ("lifecycle", "active:cohort_revenue:2026-03", 2000),
            ("value", "low:retained:2026-03", 1),
            ("value", "low:cohort_orders:2026-03", 1),
            ("value", "low:cohort_revenue:2026-03", 2000),
        ]
    )
    assert tracker.bought and tracker.pending == (("lifecycle", "reactivated", date(2026, 3, 10)),)
    # a second purchase in the month: no second `retained`; a refund subtracts, without an order
    again = Money(at("2026-03-12"), 1, 500)
    tracker, counts = track(tracker, {"lifecycle": "reactivated", "value": "low"}, [], again, "e3", CONFIG)
    assert ("lifecycle", "active:retained:2026-03", 1) not in counts
    assert ("lifecycle", "reactivated:converted:2026-03-10", 1) in counts
    back = Money(at("2026-03-13"), 0, -300)
    segments = {"lifecycle": "reactivated", "value": "low", "rfm": None}
    _, counts = track(tracker, segments, [], back, "e4", CONFIG)
    assert sorted(counts) == sorted(
        [
            ("lifecycle", "reactivated:revenue:2026-03-13", -300),
            ("value", "low:revenue:2026-03-13", -300),
            ("lifecycle", "active:cohort_revenue:2026-03", -300),
            ("value", "low:cohort_revenue:2026-03", -300),
        ]
    )


def test_entries_older_than_the_window_do_not_convert_and_a_new_period_starts_a_new_cohort() -> None:
    t1 = move("lifecycle", "new", "active", at("2026-01-01"))
    tracker, _ = track(Tracker(), {"lifecycle": "new"}, [t1], None, None, CONFIG)
    late = Money(at("2026-02-15"), 1, 100)  # 45 days after the entry: no conversion
    tracker, counts = track(tracker, {"lifecycle": "active"}, [], late, "e", CONFIG)
    assert not [c for c in counts if ":converted:" in c[1]]
    assert ("lifecycle", "active:retained:2026-02", 1) in counts and tracker.start == ()
    # a later move drops the entries it outlived, keeps the recent ones
    t2 = move("rfm", "new", "promising", at("2026-01-20"))
    tracker, _ = track(Tracker(), {"lifecycle": "new", "rfm": "new"}, [t1, t2], None, None, CONFIG)
    t3 = move("rfm", "promising", "hibernating", at("2026-02-15"))
    tracker, _ = track(tracker, {"lifecycle": "active", "rfm": "promising"}, [t3], None, None, CONFIG)
    assert tracker.pending == (
        ("rfm", "promising", date(2026, 1, 20)),
        ("rfm", "hibernating", date(2026, 2, 15)),
    )


def test_a_move_to_the_churn_segment_counts_for_the_segments_left_in_every_grid() -> None:
    lost = move("lifecycle", "at_risk", "lost", at("2026-03-14"))
    _, counts = track(
        Tracker(), {"lifecycle": "at_risk", "value": "medium", "rfm": None}, [lost], None, None, CONFIG
    )
    assert sorted(counts) == [
        ("lifecycle", "at_risk:churned:2026-03-14", 1),
        ("value", "medium:churned:2026-03-14", 1),
    ]


def test_an_erasure_forgets_the_marker_and_a_first_purchase_has_no_cohort() -> None:
    tracker = Tracker(
        "2026-03", (("lifecycle", "active"),), True, (("lifecycle", "active", date(2026, 3, 1)),)
    )
    gone = move("lifecycle", "active", None, at("2026-03-05"), cause="x")
    tracker, counts = track(tracker, {"lifecycle": "active"}, [gone], None, "x", CONFIG, None, True)
    assert tracker == Tracker() and counts == []
    first = move("lifecycle", None, "new", at("2026-03-06"), cause="p")
    tracker, counts = track(
        tracker, {"lifecycle": None}, [first], Money(at("2026-03-06"), 1, 900), "p", CONFIG
    )
    assert sorted(counts) == [
        ("lifecycle", "new:orders:2026-03-06", 1),
        ("lifecycle", "new:revenue:2026-03-06", 900),
    ]
    assert tracker.fresh and tracker.start == () and tracker.bought
    # still in no cohort for the rest of the month; in the next one, in the cohort it then holds
    segments = {"lifecycle": "new"}
    _, counts = track(tracker, segments, [], Money(at("2026-03-20"), 1, 100), "q", CONFIG)
    assert not [c for c in counts if "cohort" in c[1] or "retained" in c[1]]
    _, counts = track(tracker, segments, [], Money(at("2026-04-02"), 1, 100), "r", CONFIG)
    assert ("lifecycle", "new:retained:2026-04", 1) in counts


def test_a_batch_sums_its_steps_per_key_in_first_counted_order() -> None:
    batch: Tally = {}
    active, risky = {"lifecycle": "active"}, {"lifecycle": "at_risk", "value": "low"}
    step = Money(at("2026-03-02"), 1, 700)
    tracker, got = track_tally(Tracker(), active, [], step, "a", CONFIG, batch)
    assert got is batch
    track_tally(Tracker(), risky, [], Money(at("2026-03-02"), 0, -50), "b", CONFIG, batch)  # a refund first
    track_tally(tracker, active, [], Money(at("2026-03-02", 15), 1, 300), "c", CONFIG, batch)
    track_tally(Tracker(), risky, [], Money(at("2026-03-02"), 1, 900), "d", CONFIG, batch)
    assert len(batch) == 7  # 2 per customer's first step, 1 more per later one: not one per count
    assert list(counts(batch).items()) == [
        (("lifecycle", "active", "orders", "2026-03-02"), 2),
        (("lifecycle", "active", "revenue", "2026-03-02"), 1000),
        (("lifecycle", "active", "retained", "2026-03"), 1),
        (("lifecycle", "active", "cohort_orders", "2026-03"), 2),
        (("lifecycle", "active", "cohort_revenue", "2026-03"), 1000),
        (("lifecycle", "at_risk", "revenue", "2026-03-02"), 850),
        (("value", "low", "revenue", "2026-03-02"), 850),
        (("lifecycle", "at_risk", "cohort_revenue", "2026-03"), 850),
        (("value", "low", "cohort_revenue", "2026-03"), 850),
        (("lifecycle", "at_risk", "orders", "2026-03-02"), 1),
        (("value", "low", "orders", "2026-03-02"), 1),
        (("lifecycle", "at_risk", "retained", "2026-03"), 1),
        (("lifecycle", "at_risk", "cohort_orders", "2026-03"), 1),
        (("value", "low", "retained", "2026-03"), 1),
        (("value", "low", "cohort_orders", "2026-03"), 1),
    ]


# -- derivations ------------------------------------------------------------------------------------------
def test_figures_sum_the_days_and_rebuild_the_counts_at_the_start_from_the_flows() -> None:
    counters = {
        "a:orders:2026-03-02": 3, "a:revenue:2026-03-02": 3000, "b:revenue:2026-03-03": 1000,
        "b:orders:2026-03-03": 1, "a:orders:2026-04-01": 9, "a:converted:2026-03-02": 1,
        "b:churned:2026-03-05": 1, "a:retained:2026-03": 2, "a:cohort_orders:2026-03": 3,
        "a:cohort_revenue:2026-03": 3000, "a:retained:2026-02": 1,
    }  # fmt: skip
    flows = {"a:in:2026-03-02": 2, "b:out:2026-03-02": 2, "a:in:2026-04-02": 1, "b:out:2026-02-01": 1}
    got = segment_figures(("a", "b"), counters, flows, {"a": 5, "b": 1}, date(2026, 3, 1), date(2026, 3, 31))
    a, b = got["segments"]["a"], got["segments"]["b"]
    assert (a["customers_at_start"], a["customers_at_end"], a["entrants"], a["orders"]) == (2, 4, 2, 3)
    assert (a["revenue_share"], a["conversion"], b["customers_at_start"], b["churn_rate"]) == (
        0.75,
        0.5,
        3,
        1 / 3,
    )
    assert got["total"] == {"orders": 4, "revenue_minor": 4000}
    assert [p["period"] for p in got["periods"]] == ["2026-03"]
    march = got["periods"][0]["segments"]
    assert march["a"] == {
        "customers_at_start": 2, "buyers": 2, "retention": 1.0, "orders": 3, "revenue_minor": 3000,
        "purchase_frequency": 1.5,
    }  # fmt: skip
    assert march["b"]["retention"] == 0.0 and march["b"]["purchase_frequency"] is None
    empty = segment_figures(
        ("a", "b"), counters, flows, {"a": 5, "b": 1}, date(2026, 3, 31), date(2026, 3, 1)
    )
    assert empty["total"] == {"orders": 0, "revenue_minor": 0} and empty["periods"] == []  # from after to
    whole = segment_figures(("a", "b"), counters, flows, {"a": 5, "b": 1}, None, None)
    assert [p["period"] for p in whole["periods"]] == ["2026-02", "2026-03"]
    assert whole["segments"]["a"]["orders"] == 12 and whole["segments"]["a"]["customers_at_start"] == 2


def test_crosstab_cells_fill_every_pair_and_transpose() -> None:
    counters = {"x|u:customers": 2, "x|u:revenue_minor": 700, "y|v:orders": 1}
    cells = crosstab_cells(("x", "y"), ("u", "v"), counters, transposed=False)
    assert (
        cells["x"]["u"] == {"customers": 2, "revenue_minor": 700, "orders": 0}
        and cells["y"]["u"]["customers"] == 0
    )
    flipped = crosstab_cells(("u", "v"), ("x", "y"), counters, transposed=True)
    assert flipped["u"]["x"] == cells["x"]["u"] and flipped["v"]["y"]["orders"] == 1
    odd = crosstab_cells(("x",), ("u",), {"gone|u:customers": 1}, transposed=False)
    assert odd["gone"]["u"]["customers"] == 1  # a segment no longer defined still shows


def test_the_window_counts_in_utc_days_after_the_entry_day() -> None:
    config = KpiConfig(conversion_days=1)
    t = move("lifecycle", "new", "active", at("2026-01-01", 23))
    tracker, _ = track(Tracker(), {"lifecycle": "new"}, [t], None, None, config)
    next_day = Money(at("2026-01-02", 22), 1, 1)
    _, counts = track(tracker, {"lifecycle": "active"}, [], next_day, "e", config)
    assert ("lifecycle", "active:converted:2026-01-01", 1) in counts
    too_late = Money(at("2026-01-01", 23) + timedelta(days=2), 1, 1)
    _, counts = track(tracker, {"lifecycle": "active"}, [], too_late, "e", config)
    assert not [c for c in counts if ":converted:" in c[1]]


def test_the_marker_survives_its_stored_form() -> None:
    from streams.store.kpi_ops import decode, encode

    day = date(2026, 3, 1)
    pending = (("lifecycle", "new", day), ("audience:vip", "member", day), ("rfm", "new", date(2026, 3, 2)))
    for tracker in (
        Tracker(),
        Tracker("2026-03", (("lifecycle", "active"), ("value", None)), True, pending),
        Tracker("2026-W10", (), False, pending, fresh=True),
    ):
        assert decode(encode(tracker)) == tracker
    assert decode(None) == decode("") == Tracker()
    assert len(encode(Tracker("2026-03", (), False, pending))) < 100  # one day stored once per group


def test_periods_at_the_end_of_time_do_not_overflow() -> None:
    assert periods_within(date(9999, 12, 1), date(9999, 12, 31), "month") == ["9999-12"]
    assert period_bounds("9999-W52") == (date(9999, 12, 27), date(9999, 12, 31))
    assert periods_within(date(9999, 12, 27), date(9999, 12, 31), "week") == ["9999-W52"]


def test_week_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from segmentation import kpi_definitions

    monkeypatch.setattr(kpi_definitions, "_WEEKS_LIMIT", 2)
    monkeypatch.setattr(kpi_definitions, "_WEEKS", {})
    days = [date(2026, 12, 31) - timedelta(days=3 * n) for n in range(6)]
    expected = [f"{d.isocalendar()[0]:04d}-W{d.isocalendar()[1]:02d}" for d in days]
    assert [period_of(d, "week") for d in days * 2] == expected * 2
    assert len(kpi_definitions._WEEKS) <= 2
