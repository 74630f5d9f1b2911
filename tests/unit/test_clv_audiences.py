"""Audiences on the CLV figures (p_alive, expected_purchases_12m, clv_12m): exact time-driven crossings."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from segmentation import CustomerState, DefinitionsError, advance
from segmentation.audiences import FIELDS, fades_only, values
from segmentation.clv_fields import Figure, figure
from segmentation.rules import RuleError, parse_rule
from tests.unit.seg_helpers import day, definitions_with, ev, of_grid, purchase, run
from tests.unit.test_clv_grid import SECTION

US = timedelta(microseconds=1)
AUDIENCES = {
    "fading": "p_alive < 0.5",
    "valuable": "clv_12m >= 150 and orders >= 2",
    "quiet": "expected_purchases_12m <= 1",
    "top_tier": 'clv == "high"',
}
CLV = definitions_with(clv=SECTION, audiences=AUDIENCES)


def _value(state: CustomerState, field: str) -> Any:
    return values(state, parse_rule("r", f"{field} > 0", FIELDS), CLV.scale, CLV.clv)[field]


def test_each_audience_moves_at_the_instant_its_figure_crosses() -> None:
    state, _ = run([purchase(day(0), "90.00"), purchase(day(6), "95.00"), purchase(day(13), "80.00")], CLV)
    assert dict(state.audiences) == {"fading": "not_member", "quiet": "not_member", "top_tier": "member",
                                     "valuable": "member"}  # fmt: skip
    later = advance(state, day(2000), CLV)
    for grid, field, op, limit in (
        ("audience:fading", "p_alive", "<", 0.5),
        ("audience:valuable", "clv_12m", "<", 150),
        ("audience:quiet", "expected_purchases_12m", "<=", 1),
    ):
        (move,) = of_grid(later.transitions, grid)
        when = move[2]
        before, after = _value(state, field).at(when - US), _value(state, field).at(when)
        assert (
            (before < limit, after < limit) == (False, True)
            if op == "<"
            else (before <= limit, after <= limit) == (False, True)
        )
        assert move[3] == "time"
    p_alive = _value(state, "p_alive")
    assert str(p_alive) == f"{p_alive.at(day(13)):.6f}"


def test_a_purchase_brings_the_customer_back() -> None:
    state, _ = run([purchase(day(0), "90.00"), purchase(day(6), "95.00")], CLV)
    state = advance(state, day(900), CLV).state
    assert dict(state.audiences)["fading"] == "member"
    state, out = run([purchase(day(901), "50.00")], CLV, state)
    assert of_grid(out, "audience:fading") == [("member", "not_member", day(901), out[-1].cause)]


def test_one_time_buyers_and_prospects() -> None:
    once, _ = run([purchase(day(0), "20.00")], CLV)
    p_alive = _value(once, "p_alive")
    assert p_alive.at(day(5000)) == 1.0 and p_alive.first_below(Decimal("0.5"), False, day(1)) is None
    prospect, _ = run([ev("web_visit", day(0))], CLV)
    assert _value(prospect, "clv_12m") is None and dict(prospect.audiences)["fading"] == "not_member"
    assert figure(once, None, "clv_12m", CLV.scale) is None


def test_crossings_already_past_or_never_reached() -> None:
    state, _ = run([purchase(day(0), "90.00"), purchase(day(6), "95.00")], CLV)
    clv = _value(state, "clv_12m")
    assert isinstance(clv, Figure)
    assert clv.first_below(Decimal("1000000"), False, day(6)) is None  # already below
    assert clv.first_below(Decimal("0"), True, day(6)) is None  # only reached at the limit of time
    now = clv.at(day(6))
    assert clv.first_below(Decimal(now), True, day(6)) is None  # <= the value itself: already
    crossing = clv.first_below(Decimal(now), False, day(6))
    assert crossing == day(6) + US  # the next microsecond is below
    later = clv.at(day(10))
    assert clv.first_below(Decimal(later), True, day(6)) == day(10)  # reached exactly there


@pytest.mark.parametrize(
    ("text", "message"),
    [("p_alive == 0.5", "compare it with <"), ("p_alive in (1, 2)", "compare it with <"),
     ('clv_12m > "x"', "compare it with <"), ("expected_purchases_12m within 3 days", "compare it with <")],
)  # fmt: skip
def test_falling_fields_take_ordering_comparisons_only(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rule("r", text, FIELDS)


def test_the_fields_need_a_clv_section() -> None:
    with pytest.raises(DefinitionsError, match=r"audiences\.fading: p_alive need a clv section"):
        definitions_with(audiences={"fading": "p_alive < 0.5"})


def test_direction_of_time_for_the_hot_path() -> None:
    def rule(text: str) -> Any:
        return parse_rule("r", text, FIELDS).expr

    assert fades_only(rule("clv_12m > 5")) and not fades_only(rule("p_alive < 0.5"))
    assert fades_only(rule("not p_alive <= 0.5")) and not fades_only(rule("not clv_12m >= 3"))
