"""Email grid: decayed scores, thresholds, analytic crossing times verified to the microsecond."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from segmentation import CustomerState
from segmentation.config_reading import DefinitionsError
from segmentation.email_appetence import EmailConfig, classify, explain, next_change, score_at
from tests.unit.seg_helpers import DEFAULT, day, ev, run

CFG = DEFAULT.email
TICK = timedelta(microseconds=1)


def _state(opens: float = 0.0, clicks: float = 0.0, at: float | None = 0, **kw: object) -> CustomerState:
    return CustomerState(
        "c1",
        email_open_score=opens,
        email_click_score=clicks,
        email_scores_at=None if at is None else day(at),
        email_opens=int(opens),
        email_clicks=int(clicks),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("state", "now", "expected"),
    [
        (CustomerState("c1"), day(0), "no_email"),
        (CustomerState("c1", emails_sent=3), day(0), "unresponsive"),
        (_state(3.0), day(0), "engaged"),
        (_state(1.0, 1.0), day(0), "engaged"),  # a click weighs 2 opens
        (_state(3.0), day(30), "passive"),  # halved: 1.5
        (_state(1.0), day(30), "passive"),  # 0.5 exactly
        (_state(1.0), day(30, microseconds=1), "unresponsive"),
        (_state(3.0, unsubscribed=True), day(0), "unsubscribed"),
        (CustomerState("c1", unsubscribed=True), day(0), "unsubscribed"),
    ],
)
def test_segment(state: CustomerState, now: datetime, expected: str) -> None:
    assert classify(state, CFG, now) == expected


def test_score_without_any_open_is_zero() -> None:
    assert score_at(CustomerState("c1", emails_sent=1), CFG, day(3)) == 0.0


# 43.4469 and 30.112: the rounded analytic instant is one microsecond early / late (float rounding),
# found by search, so the verification steps in both directions are exercised.
@pytest.mark.parametrize(
    ("opens", "clicks"),
    [(3.0, 0.0), (4.0, 0.0), (7.3, 1.1), (1.0, 0.0), (100.0, 3.0), (43.4469, 0.0), (30.112, 0.0)],
)
def test_next_change_is_the_exact_microsecond(opens: float, clicks: float) -> None:
    state = _state(opens, clicks)
    current = classify(state, CFG, day(0))
    due = next_change(state, CFG, day(0), current)
    assert due is not None
    assert classify(state, CFG, due) != current
    assert classify(state, CFG, due - TICK) == current


def test_no_change_when_unresponsive_or_unsubscribed() -> None:
    assert next_change(_state(0.1), CFG, day(0), "unresponsive") is None
    assert next_change(_state(3.0, unsubscribed=True), CFG, day(0), "unsubscribed") is None


def test_next_change_is_after_now_even_at_the_threshold() -> None:
    state = _state(3.0)  # engaged, exactly 3.0 at day 0: falls below right after
    assert next_change(state, CFG, day(0), "engaged") == day(0) + TICK


def test_engagement_events_decay_and_late_events_count_decayed() -> None:
    in_order, _ = run([ev("email_open", day(0)), ev("email_click", day(30))])
    assert in_order.email_open_score == 0.5
    assert in_order.email_click_score == 1.0
    assert in_order.email_scores_at == day(30)
    late, _ = run([ev("email_click", day(30)), ev("email_open", day(0))])
    assert (late.email_open_score, late.email_click_score, late.email_scores_at) == (0.5, 1.0, day(30))
    assert late.email_opens == late.email_clicks == 1


def test_explain() -> None:
    assert explain(_state(3.0), CFG, day(30), "passive") == {
        "rule": "0.5 <= score < 3.0",
        "score": "1.5",
        "half_life_days": "30.0",
        "emails_sent": "0",
        "email_opens": "3",
        "email_clicks": "0",
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"half_life_days": 0}, "half_life_days: must be > 0"),
        ({"click_weight": -1}, "click_weight: must be >= 0"),
        ({"passive_at": 3.0}, "need 0 < passive_at < engaged_at"),
        ({"engaged_at": "high"}, "email.engaged_at: expected a number"),
        ({"engaged_at": True}, "email.engaged_at: expected a number"),
    ],
)
def test_config_errors(raw: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        EmailConfig.from_mapping(raw)
