"""Lifecycle grid: table of stages at exact instants, and the full path with exact effective times."""

from __future__ import annotations

from datetime import datetime

import pytest

from segmentation import CustomerState, advance
from segmentation.config_reading import DefinitionsError
from segmentation.lifecycle import LifecycleConfig, classify, explain, next_change
from tests.unit.seg_helpers import DEFAULT, T0, day, ev, of_grid, purchase, run

CFG = DEFAULT.lifecycle


def _state(first: float | None, last: float | None, reactivated: float | None = None) -> CustomerState:
    return CustomerState(
        "c1",
        first_purchase_at=None if first is None else day(first),
        last_purchase_at=None if last is None else day(last),
        reactivated_at=None if reactivated is None else day(reactivated),
    )


@pytest.mark.parametrize(
    ("first", "last", "reactivated", "now", "expected"),
    [
        (None, None, None, day(5), "prospect"),
        (0, 0, None, day(0), "new"),
        (0, 0, None, day(30, microseconds=-1), "new"),
        (0, 0, None, day(30), "active"),
        (0, 10, None, day(99, microseconds=-1), "active"),
        (0, 10, None, day(100), "at_risk"),
        (0, 10, None, day(190, microseconds=-1), "at_risk"),
        (0, 10, None, day(190), "lost"),
        (0, 200, 200, day(200), "reactivated"),
        (0, 200, 200, day(230, microseconds=-1), "reactivated"),
        (0, 200, 200, day(230), "active"),
        (0, 200, 200, day(290), "at_risk"),
    ],
)
def test_stage_at_instant(
    first: float | None, last: float | None, reactivated: float | None, now: datetime, expected: str
) -> None:
    assert classify(_state(first, last, reactivated), CFG, now) == expected


@pytest.mark.parametrize(
    ("first", "last", "reactivated", "now", "current", "expected"),
    [
        (None, None, None, day(1), "prospect", None),
        (0, 0, None, day(1), "new", day(30)),
        (0, 20, None, day(40), "active", day(110)),
        (0, 20, None, day(120), "at_risk", day(200)),
        (0, 20, None, day(300), "lost", None),
        (0, 200, 200, day(201), "reactivated", day(230)),
    ],
)
def test_next_change(
    first: float | None,
    last: float | None,
    reactivated: float | None,
    now: datetime,
    current: str,
    expected: datetime | None,
) -> None:
    state = _state(first, last, reactivated)
    assert classify(state, CFG, now) == current
    assert next_change(state, CFG, now, current) == expected


def test_full_path_with_exact_effective_times() -> None:
    visit = ev("web_visit", day(0), event_id="visit")
    first = purchase(day(1), event_id="p1")
    again = purchase(day(200), event_id="p2")
    state, transitions = run([visit, first, again])
    outcome = advance(state, day(250), DEFAULT)
    assert of_grid([*transitions, *outcome.transitions], "lifecycle") == [
        (None, "prospect", day(0), "visit"),
        ("prospect", "new", day(1), "p1"),
        ("new", "active", day(31), "time"),
        ("active", "at_risk", day(91), "time"),
        ("at_risk", "lost", day(181), "time"),
        ("lost", "reactivated", day(200), "p2"),
        ("reactivated", "active", day(230), "time"),
    ]
    assert outcome.state.seg_lifecycle == "active"
    assert outcome.state.lifecycle_since == day(230)
    assert outcome.state.reactivated_at == day(200)
    assert outcome.state.next_due_at == day(290)


def test_purchase_exactly_at_the_at_risk_instant_reactivates() -> None:
    """Time-driven changes due at the event time happen before the event."""
    _, transitions = run([purchase(day(0), event_id="a"), purchase(day(90), event_id="b")])
    assert of_grid(transitions, "lifecycle") == [
        (None, "new", day(0), "a"),
        ("new", "active", day(30), "time"),
        ("active", "at_risk", day(90), "time"),
        ("at_risk", "reactivated", day(90), "b"),
    ]


def test_purchase_while_active_does_not_reactivate() -> None:
    state, _ = run([purchase(day(0)), purchase(day(89))])
    assert state.reactivated_at is None
    assert state.seg_lifecycle == "active"


def test_explain_names_rule_and_values() -> None:
    state = _state(0, 10)
    assert explain(state, CFG, day(100), "at_risk") == {
        "rule": "90 <= days_since_last_purchase < 180",
        "days_since_last_purchase": "90",
        "last_purchase_at": day(10).isoformat(),
        "first_purchase_at": T0.isoformat(),
    }
    assert explain(_state(None, None), CFG, day(1), "prospect") == {"rule": "no purchase yet"}
    reactivated = explain(_state(0, 200, 200), CFG, day(201), "reactivated")
    assert (reactivated["reactivated_at"], reactivated["days_since_reactivation"]) == (
        day(200).isoformat(),
        "1",
    )


def test_explain_says_when_new_ended() -> None:
    """Leaving `new` for `active`, the why gives the figure that ended `new`, not only the active rule."""
    assert explain(_state(0, 20), CFG, day(30), "active") == {
        "rule": "days_since_last_purchase < 90",
        "days_since_last_purchase": "10",
        "days_since_first_purchase": "30",
        "last_purchase_at": day(20).isoformat(),
        "first_purchase_at": T0.isoformat(),
    }
    assert explain(_state(0, 0), CFG, day(29), "new")["days_since_first_purchase"] == "29"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"new_for_days": 90}, "new_for_days < at_risk_after_days"),
        ({"lost_after_days": 90}, "at_risk_after_days < lost_after_days"),
        ({"reactivated_for_days": 0}, "reactivated_for_days must be > 0"),
        ({"reactivated_for_days": 90}, "reactivated_for_days must be > 0 and < at_risk_after_days"),
    ],
)
def test_config_validation(values: dict[str, int], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        LifecycleConfig.from_mapping(values)
