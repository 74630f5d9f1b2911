"""Properties that must hold for any event log (hypothesis).

Order-insensitivity holds for the running totals and everything derived from them only (F, M,
counters, first/last times, value, channel, RFM once advanced to the same instant); email scores are
order-insensitive up to float rounding; `reactivated` and the "latest value" fields (survey, tier,
profile) at *equal* event times depend on arrival order (see docs/semantics.md).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentation import (
    CustomerState,
    Definitions,
    Event,
    Transition,
    advance,
    apply,
    email_appetence,
    next_due,
    parse_event,
    rfm,
)
from segmentation.state_mapping import state_from_mapping, state_to_mapping
from tests.unit.seg_helpers import DEFAULT, day, definitions_with

# Audiences that time can also turn *on* (`not ... within`), and mixed directions, to exercise next_due.
RICH = definitions_with(
    audiences={
        "dormant": "not (last_seen_at within 30 days)",
        "mixed": (
            'last_purchase_at within 90 days and not (last_seen_at within 7 days) or lifecycle == "lost"'
        ),
        "buyer_recent": "orders >= 2 and first_purchase_at within 200 days",
        # windowed facts of the recent orders: fading, growing and two-way rules
        "web_full_price": 'orders(last 30 days, channel == "web") >= 1 and coupon_orders(last 30 days) == 0',
        "few_recent": "orders >= 1 and orders(last 10 days) < 2",
        "two_way": 'spend(last 48 hours, category == "shoes") == 0.00 or coupon_orders(last 9 days) != 1',
    },
    recent_orders=3,  # small, so that the record's bound is reached too
)

TICK = timedelta(microseconds=1)
EXCLUSIVE = (
    "lifecycle", "rfm", "value", "email", "channel", "age_band", "region", "satisfaction",
    "category", "promotion",
)  # fmt: skip

_payloads = st.one_of(
    st.builds(
        lambda amount, currency, channel, coupon, items: {
            "type": "purchase", "order_id": "o", "amount": amount, "currency": currency, "channel": channel,
            "coupon_used": coupon, "items": items,
        },
        st.sampled_from(["0.00", "9.99", "45.00", "120.50", "800.00", "2500.00"]),
        st.sampled_from(["EUR", "USD", "JPY"]),
        st.sampled_from(["web", "store", "app", "phone"]),
        st.booleans(),
        st.sampled_from([
            [], [{"sku": "SH-1", "quantity": 1}], [{"sku": "x", "quantity": 2, "category": "Home"}],
            [{"sku": "SH-1", "quantity": 1, "unit_price": "3"},
             {"sku": "AP-1", "quantity": 2, "unit_price": "1"}],
        ]),
    ),
    st.builds(lambda a: {"type": "refund", "order_id": "o", "amount": a, "currency": "EUR"},
              st.sampled_from(["5.00", "60.00", "900.00"])),
    st.sampled_from(
        [{"type": k} for k in ("email_sent", "email_open", "email_click", "web_visit", "app_session")]
    ),
    st.just({"type": "email_unsubscribe"}),
    st.builds(lambda s: {"type": "survey_response", "score": s}, st.integers(0, 10)),
    st.builds(lambda y, r: {"type": "profile_update", "birth_year": y, "region": r},
              st.sampled_from([1950, 1990, 2001, 2002, None]), st.sampled_from(["SE", "FR", "US", None])),
    st.builds(lambda p, t: {"type": "loyalty", "points_delta": p, "tier": t},
              st.integers(-10, 50), st.sampled_from([None, "gold"])),
)  # fmt: skip
_instants = st.builds(
    lambda d, s: day(d, seconds=s), st.integers(min_value=0, max_value=500), st.integers(0, 86_399)
)


@st.composite
def logs(draw: Any, max_size: int = 25) -> list[Event]:
    """A customer's event log with unique ids, arbitrary (also out-of-order) event times."""
    payloads = draw(st.lists(_payloads, min_size=1, max_size=max_size))
    events = []
    for index, payload in enumerate(payloads):
        at: datetime = draw(_instants)
        raw = {
            "event_id": f"e{index}",
            "customer_id": "c1",
            "occurred_at": at.isoformat(),
            "schema_version": 1,
        }
        if payload["type"] == "purchase":  # each order once; a refund names any order, even a later one
            payload = {**payload, "order_id": f"o{index}"}
        elif payload["type"] == "refund":
            payload = {**payload, "order_id": f"o{draw(st.integers(0, len(payloads) - 1))}"}
        events.append(parse_event({**raw, **payload}))
    return events


def _run(events: list[Event], definitions: Definitions = DEFAULT) -> tuple[CustomerState, list[Transition]]:
    state = CustomerState.new("c1")
    out: list[Transition] = []
    for event in events:
        outcome = apply(state, event, definitions)
        state, out = outcome.state, out + list(outcome.transitions)
    return state, out


FAST = settings(
    max_examples=int(os.environ.get("SEG_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(logs())
def test_deterministic(events: list[Event]) -> None:
    one, t1 = _run(events)
    two, t2 = _run(events)
    assert state_to_mapping(one) == state_to_mapping(two)
    assert [t.id for t in t1] == [t.id for t in t2]


@FAST
@given(logs(), st.data())
def test_duplicates_are_noops(events: list[Event], data: Any) -> None:
    state, _ = _run(events)
    again = data.draw(st.sampled_from(events[-64:]))
    outcome = apply(state, again, DEFAULT)
    assert outcome.state is state
    assert outcome.transitions == ()


@FAST
@given(logs(), st.lists(st.integers(0, 600), max_size=4), st.sampled_from([DEFAULT, RICH]))
def test_one_segment_per_grid_and_chained_transitions(
    events: list[Event], advances: list[int], definitions: Definitions
) -> None:
    state, transitions = _run(events, definitions)
    for days in sorted(advances):
        outcome = advance(state, day(days), definitions)
        state = outcome.state
        transitions += outcome.transitions
    grids = definitions.grid_segments
    for grid in EXCLUSIVE:
        assert getattr(state, f"seg_{grid}") in grids[grid]
    assert dict(state.audiences).keys() == {rule.name for rule in definitions.audiences}
    assert all(segment in ("member", "not_member") for _, segment in state.audiences)
    last: dict[str, str | None] = {}
    for transition in transitions:
        assert transition.from_segment == last.get(transition.grid)
        assert transition.from_segment != transition.to_segment
        last[transition.grid] = transition.to_segment
    assert last == {
        **{g: getattr(state, f"seg_{g}") for g in EXCLUSIVE},
        **{f"audience:{name}": segment for name, segment in state.audiences},
    }


@FAST
@given(logs(), st.integers(1, 10), st.floats(0.0, 1.0), st.sampled_from([DEFAULT, RICH]))
def test_advance_to_next_due_changes_and_earlier_does_not(
    events: list[Event], steps: int, where: float, definitions: Definitions
) -> None:
    state, _ = _run(events, definitions)
    for _ in range(steps):
        due = next_due(state, definitions)
        if due is None:
            return
        assert state.clock is not None and due > state.clock
        before = state.clock + (due - state.clock - TICK) * where
        assert advance(state, due - TICK, definitions).transitions == ()
        assert advance(state, before, definitions).transitions == ()
        outcome = advance(state, due, definitions)
        assert len(outcome.transitions) >= 1
        assert {t.effective_at for t in outcome.transitions} == {due}
        assert advance(outcome.state, due, definitions).transitions == ()
        state = outcome.state


@FAST
@given(logs())
def test_round_trip_is_lossless(events: list[Event]) -> None:
    state, _ = _run(events)
    assert state_from_mapping(state_to_mapping(state)) == state
    later = advance(state, day(700), DEFAULT).state
    assert state_from_mapping(state_to_mapping(later)) == later


_TOTALS = (
    "orders", "gross_minor", "refunded_minor", "refunds", "channel_web", "channel_store", "channel_app",
    "channel_phone", "emails_sent", "email_opens", "email_clicks", "unsubscribed", "web_visits",
    "app_sessions", "app_seconds", "loyalty_points", "first_seen_at", "last_seen_at", "first_purchase_at",
    "last_purchase_at", "seg_value", "seg_channel",
)  # fmt: skip


@FAST
@given(logs(max_size=15), st.randoms(use_true_random=False))
def test_totals_are_order_insensitive(events: list[Event], rng: Any) -> None:
    shuffled = list(events)
    rng.shuffle(shuffled)
    one, _ = _run(events)
    two, _ = _run(shuffled)
    assert {f: getattr(one, f) for f in _TOTALS} == {f: getattr(two, f) for f in _TOTALS}
    end = day(600)
    one, two = advance(one, end, DEFAULT).state, advance(two, end, DEFAULT).state
    assert (one.seg_rfm, one.rfm_r, one.rfm_f, one.rfm_m) == (two.seg_rfm, two.rfm_r, two.rfm_f, two.rfm_m)
    assert abs(one.email_open_score - two.email_open_score) <= 1e-9 * max(1.0, one.email_open_score)


_scores = st.floats(0.0, 50.0, allow_nan=False)


@FAST
@given(
    _scores, _scores, st.integers(0, 3), st.booleans(), st.integers(0, 400), st.integers(0, 86_400_000_000)
)
def test_email_assess_agrees_with_classify_and_next_change(
    opens: float, clicks: float, sent: int, unsubscribed: bool, days: int, micros: int
) -> None:
    state = CustomerState(
        "c1",
        email_open_score=opens,
        email_click_score=clicks,
        email_scores_at=day(0) if opens or clicks else None,
        email_opens=1 if opens else 0,
        email_clicks=1 if clicks else 0,
        emails_sent=sent,
        unsubscribed=unsubscribed,
    )
    now = day(days, microseconds=micros)
    segment = email_appetence.classify(state, DEFAULT.email, now)
    expected = (segment, email_appetence.next_change(state, DEFAULT.email, now, segment))
    assert email_appetence.assess(state, DEFAULT.email, now) == expected


@FAST
@given(
    st.integers(0, 12), st.integers(0, 300_000), st.integers(0, 300_000), st.integers(0, 500), st.booleans()
)
def test_rfm_assess_agrees_with_scores_classify_and_next_change(
    orders: int, gross: int, refunded: int, days: int, bought: bool
) -> None:
    at = day(0) if bought else None
    state = CustomerState(
        "c1",
        last_purchase_at=at,
        first_purchase_at=at,
        orders=orders,
        gross_minor=gross,
        refunded_minor=refunded,
    )
    now = day(days)
    segment = rfm.classify(state, DEFAULT.rfm, now)
    expected = (
        rfm.scores(state, DEFAULT.rfm, now),
        segment,
        rfm.next_change(state, DEFAULT.rfm, now, segment),
    )
    assert rfm.assess(state, DEFAULT.rfm, now) == expected
