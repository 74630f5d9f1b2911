"""The clv grid: tiers of predicted 12-month CLV, kept current per event, moved by time at exact instants."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from segmentation import CustomerState, DefinitionsError, advance, apply, next_due, resegment
from segmentation.clv import NO_PURCHASE, ClvConfig, assess, figures, first_below
from segmentation.clv_model import BgNbd, GammaGamma, expected_purchases, expected_spend, p_alive
from segmentation.state_fields import state_fields
from segmentation.state_mapping import state_from_mapping, state_to_mapping
from tests.unit.seg_helpers import (
    DEFAULT,
    day,
    definitions_with,
    ev,
    of_grid,
    packed_before,
    purchase,
    refund,
    run,
)  # fmt: skip

SECTION: dict[str, Any] = {
    "bgnbd": {"r": "0.243", "alpha": "4.414", "a": "0.793", "b": "2.426"},
    "gamma_gamma": {"p": "6.25", "q": "3.74", "gamma": "15.44"},
    "horizon_days": 365,
    "tiers": [
        {"segment": "low", "from": "0"},
        {"segment": "medium", "from": "100"},
        {"segment": "high", "from": "500"},
    ],
    "fitted": {"until": "2026-06-30", "customers": 1000},
}
CLV = definitions_with(clv=SECTION)
US = timedelta(microseconds=1)


def _tier(state: CustomerState, at: Any) -> str | None:
    return assess(state, CLV.clv, at, CLV.scale)[0]


def test_figures_are_the_closed_forms_of_the_customers_history() -> None:
    events = [purchase(day(0), "30.00"), purchase(day(14), "50.00"), purchase(day(14, hours=3), "10.00")]
    state, _ = run([*events, refund(day(20), "10.00"), purchase(day(70), "40.00")], CLV)
    assert state.purchase_days == 3  # two purchases on day 14 count once
    numbers = figures(state, CLV.clv, day(100), CLV.scale)  # type: ignore[arg-type]
    assert numbers is not None
    m, g = CLV.clv.bgnbd, CLV.clv.gamma_gamma  # type: ignore[union-attr]
    x, t_x, big_t, mean = 2, 10.0, 100 / 7, 120 / 4  # net 120.00 over 4 orders
    assert numbers.p_alive == pytest.approx(p_alive(m, x, t_x, big_t), rel=1e-12)
    assert numbers.expected_purchases == pytest.approx(
        expected_purchases(m, x, t_x, big_t, 365 / 7), rel=1e-12
    )
    assert numbers.expected_spend == pytest.approx(expected_spend(g, x, mean), rel=1e-12)
    assert numbers.clv == pytest.approx(numbers.expected_purchases * numbers.expected_spend, rel=1e-15)
    assert figures(CustomerState.new("c1"), CLV.clv, day(1), CLV.scale) is None  # type: ignore[arg-type]


def test_a_buyer_falls_through_the_tiers_at_exact_microseconds() -> None:
    events = [purchase(day(0), "150.00"), purchase(day(10), "160.00"), purchase(day(20), "170.00")]
    state, out = run(events, CLV)
    assert [(a, b, when) for a, b, when, _ in of_grid(out, "clv")] == [
        (None, "low", day(0)), ("low", "medium", day(10)), ("medium", "high", day(20))
    ]  # fmt: skip
    assert state.seg_clv == "high"
    due = state.due_clv
    assert due is not None and state.next_due_at is not None and state.next_due_at <= due
    assert _tier(state, due - US) == "high" and _tier(state, due) == "medium"
    later = advance(state, day(3000), CLV)
    moves = of_grid(later.transitions, "clv")
    assert [(a, b, cause) for a, b, _, cause in moves] == [
        ("high", "medium", "time"),
        ("medium", "low", "time"),
    ]
    assert moves[0][2] == due
    second = moves[1][2]
    assert _tier(later.state, second - US) == "medium" and _tier(later.state, second) == "low"
    assert later.state.due_clv is None  # the lowest tier starts at 0: clv never goes below it
    why = next(t.why for t in later.transitions if t.grid == "clv")
    assert why["rule"] == "clv_12m >= 100 and clv_12m < 500"
    assert set(why) == {
        "rule",
        "clv_12m",
        "p_alive",
        "expected_purchases_12m",
        "expected_spend",
        "repeat_purchase_days",
    }
    assert why["repeat_purchase_days"] == "2"


def test_a_purchase_moves_the_customer_up_at_once() -> None:
    state, _ = run([purchase(day(0), "30.00")], CLV)
    assert state.seg_clv == "low"
    state, out = run([purchase(day(5), "200.00"), purchase(day(9), "200.00")], CLV, state)
    assert [(a, b, when) for a, b, when, _ in of_grid(out, "clv")] == [
        ("low", "medium", day(5)), ("medium", "high", day(9))
    ]  # fmt: skip


def test_a_refund_can_lower_the_tier() -> None:
    state, _ = run([purchase(day(0), "300.00"), purchase(day(3), "300.00")], CLV)
    assert state.seg_clv == "high"
    _, out = run([refund(day(4), "590.00")], CLV, state)
    assert [(a, b) for a, b, _, _ in of_grid(out, "clv")] == [("high", "low")]


def test_prospects_are_in_no_purchase_and_only_with_a_clv_section() -> None:
    state, out = run([ev("web_visit", day(0))], CLV)
    assert state.seg_clv == NO_PURCHASE and of_grid(out, "clv") == [(None, NO_PURCHASE, day(0), out[0].cause)]
    plain, out = run(
        [ev("web_visit", day(0)), purchase(day(1), "500.00"), purchase(day(2), "500.00")], DEFAULT
    )
    assert plain.seg_clv is None and plain.due_clv is None and of_grid(out, "clv") == []
    assert "clv" not in DEFAULT.grid_segments
    assert CLV.grid_segments["clv"] == ("low", "medium", "high", NO_PURCHASE)


def test_late_purchases_and_purchase_days() -> None:
    state, _ = run([purchase(day(0)), purchase(day(10)), purchase(day(10, hours=5))], CLV)
    assert state.purchase_days == 2
    state, _ = run([purchase(day(0, hours=1))], CLV, state)  # late, on the first purchase's day
    assert state.purchase_days == 2
    state, _ = run([purchase(day(5))], CLV, state)  # late, on a new day
    assert state.purchase_days == 3
    # a late purchase that moved the last purchase past the clock: T is taken as at least t_x
    assert assess(state._replace(clock=day(9)), CLV.clv, day(9), CLV.scale)[0] == state.seg_clv


def test_states_stored_before_purchase_days_count_their_orders() -> None:
    state, _ = run([purchase(day(0)), purchase(day(3)), purchase(day(5))], CLV)
    legacy = state._replace(purchase_days=0)  # as read from a hash written before the field existed
    assert legacy.repeat_purchase_days == 2 == state.repeat_purchase_days
    same_day, _ = run([purchase(day(5, hours=2))], CLV, legacy)
    assert same_day.purchase_days == 3
    new_day, _ = run([purchase(day(9))], CLV, legacy)
    assert new_day.purchase_days == 4


def test_erasure_and_a_definitions_change_leave_the_grid() -> None:
    state, _ = run([purchase(day(0), "100.00")], CLV)
    erased = apply(state, ev("customer_erased", day(1)), CLV)
    assert [(a, b) for a, b, _, _ in of_grid(erased.transitions, "clv")] == [(state.seg_clv, None)]
    dropped = resegment(state, DEFAULT, day(1))
    moves = [t for t in dropped.transitions if t.grid == "clv"]
    assert [(t.from_segment, t.to_segment, t.why["rule"]) for t in moves] == [
        (state.seg_clv, None, "grid no longer defined")
    ]
    assert dropped.state.due_clv is None and next_due(state, DEFAULT) == dropped.state.next_due_at


def test_state_fields_round_trip_and_older_hashes_read_as_defaults() -> None:
    state, _ = run([purchase(day(0), "80.00"), purchase(day(10), "90.00")], CLV)
    mapping = state_to_mapping(state)
    assert (state_fields(state)["purchase_days"], mapping["clv"]) == ("2", "medium")
    assert state_from_mapping(mapping) == state
    older = packed_before(state, "purchase_days")
    assert state_from_mapping(older) == state._replace(purchase_days=0, seg_clv=None, due_clv=None)


def test_clv_and_p_alive_only_fall_while_no_purchase_arrives() -> None:
    state, _ = run([purchase(day(0), "40.00"), purchase(day(30), "60.00"), purchase(day(31), "20.00")], CLV)
    series = []
    for k in range(300):
        numbers = figures(state, CLV.clv, day(31 + 7 * k), CLV.scale)  # type: ignore[arg-type]
        assert numbers is not None
        series.append(numbers)
    assert all(b.clv < a.clv and b.p_alive < a.p_alive for a, b in itertools.pairwise(series))


def test_first_below_is_the_first_integer_past_the_root() -> None:
    assert first_below(lambda u: 1000.5 - u, 0, 10**12) == 1001

    def curve(u: int) -> float:  # a convex fall: interpolation keeps landing on one side
        return 1.0 / (1.0 + u / 1e6) - 1e-4

    root = first_below(curve, 0, 10**15)
    assert root is not None and curve(root) < 0 <= curve(root - 1)
    assert first_below(lambda u: 1.0, 0, 10**12) is None  # never crosses before the limit


BAD = [
    ({"bgnbd": None}, "clv.bgnbd: expected a mapping"),
    ({"bgnbd": {"r": "1", "alpha": "2", "a": "1", "b": "3"}}, "a must differ from 1"),
    ({"bgnbd": {"r": "1", "alpha": "2", "a": "0.5", "b": "0.4"}}, "a \\+ b exceed 1"),
    ({"bgnbd": {"r": "-1", "alpha": "2", "a": "2", "b": "3"}}, "clv.bgnbd.r: must be a positive number"),
    ({"gamma_gamma": {"p": "1", "q": "0.5", "gamma": "3"}}, "q: must be > 1"),
    ({"horizon_days": 0}, "horizon_days: must be between 1 and 3650"),
    ({"tiers": []}, "at least one tier"),
    ({"tiers": [{"segment": "a", "from": "1"}]}, "the first starting at 0"),
    ({"tiers": ["low"]}, r"clv.tiers\[0\]: expected a mapping"),
    ({"tiers": [{"segment": "a", "from": "0"}, {"segment": "b", "from": "0"}]}, "strictly ascending"),
    ({"tiers": [{"segment": "a", "from": "0"}, {"segment": "a", "from": "1"}]}, "must be unique"),
    ({"tiers": [{"segment": "no_purchase", "from": "0"}]}, "must be unique and not"),
    ({"fitted": "yes"}, "clv.fitted: expected a mapping"),
    ({"colour": 1}, "clv: unknown keys"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_a_broken_clv_section_is_refused_with_its_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        definitions_with(clv={**SECTION, **change})


def test_config_reads_decimal_strings() -> None:
    cfg = CLV.clv
    assert isinstance(cfg, ClvConfig)
    assert cfg.bgnbd == BgNbd(0.243, 4.414, 0.793, 2.426) and cfg.gamma_gamma == GammaGamma(6.25, 3.74, 15.44)
    assert cfg.lower_bounds == (Decimal(0), Decimal(100), Decimal(500)) and cfg.horizon_weeks == 365 / 7
    assert dict(cfg.fitted) == {"until": "2026-06-30", "customers": "1000"}
