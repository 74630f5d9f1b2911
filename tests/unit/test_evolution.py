"""apply / advance / next_due / resegment: ordering, duplicates, late events, refunds, money, erasure."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from segmentation import (
    CustomerState,
    DefinitionsError,
    Transition,
    UnknownCurrency,
    advance,
    apply,
    next_due,
    resegment,
)
from segmentation.transition import NO_ID, NO_WHY, transition_id
from tests.unit.seg_helpers import DEFAULT, day, definitions_with, ev, of_grid, purchase, refund, run

# value tiers renamed below 100000: the default audience vip_recent (`value in ("high", "top")`) still names
# two of them, as definitions must (a name that is no segment of the grid is refused)
SMALL_BIG = {
    "tiers": [
        {"segment": "small", "from": "0"},
        {"segment": "big", "from": "100"},
        {"segment": "high", "from": "100000"},
        {"segment": "top", "from": "200000"},
    ]
}


def test_first_event_assigns_every_grid_from_none() -> None:
    state, transitions = run([ev("web_visit", day(0), event_id="v")])
    assert [(t.grid, t.from_segment, t.to_segment) for t in transitions] == [
        ("lifecycle", None, "prospect"),
        ("rfm", None, "no_purchase"),
        ("value", None, "none"),
        ("email", None, "no_email"),
        ("channel", None, "none"),
        ("age_band", None, "unknown"),
        ("region", None, "unknown"),
        ("satisfaction", None, "unknown"),
        ("category", None, "none"),
        ("promotion", None, "no_purchase"),
        ("audience:unhappy_recent_buyers", None, "not_member"),
        ("audience:vip_recent", None, "not_member"),
        ("audience:win_back", None, "not_member"),
    ]
    assert {t.cause for t in transitions} == {"v"}
    assert {t.effective_at for t in transitions} == {day(0)}
    assert {t.definitions_version for t in transitions} == {DEFAULT.version}
    assert state.clock == state.first_seen_at == state.last_seen_at == day(0)
    assert state.next_due_at is None
    assert state.audiences == (
        ("unhappy_recent_buyers", "not_member"),
        ("vip_recent", "not_member"),
        ("win_back", "not_member"),
    )


def test_duplicate_event_has_no_effect_at_all() -> None:
    event = purchase(day(1), event_id="dup")
    state, _ = run([ev("web_visit", day(0)), event])
    again = apply(state, event, DEFAULT)
    assert again.state is state
    assert again.transitions == ()
    later_duplicate = purchase(day(500), event_id="dup")  # even a time far ahead is not advanced to
    assert apply(state, later_duplicate, DEFAULT).state is state


def test_recent_id_memory_is_bounded() -> None:
    small = definitions_with(recent_event_ids=2)
    state, _ = run([ev("web_visit", day(0), event_id=f"v{i}") for i in range(4)], small)
    assert state.recent_event_ids == ("v2", "v3")
    assert state.web_visits == 4
    forgotten = apply(state, ev("web_visit", day(0), event_id="v0"), small)  # beyond memory: counted again
    assert forgotten.state.web_visits == 5


def test_event_for_another_customer_is_refused() -> None:
    with pytest.raises(ValueError, match="is for customer 'c2', not 'c1'"):
        apply(CustomerState.new("c1"), ev("web_visit", day(0), customer="c2"), DEFAULT)


def test_event_id_with_the_separator_of_the_id_memory_is_refused() -> None:
    valid = ev("web_visit", day(0))
    forged = valid.model_copy(update={"event_id": "a\x1fb"})  # bypassing validation, as a bug could
    with pytest.raises(ValueError, match="contains a control character"):
        apply(CustomerState.new("c1"), forged, DEFAULT)


def test_refunds_reduce_monetary_not_frequency_and_never_below_zero() -> None:
    state, transitions = run(
        [
            purchase(day(0), "120.00"),
            refund(day(1), "30.00", event_id="r1"),
            refund(day(2), "500.00", event_id="r2"),
        ]
    )
    assert (state.orders, state.gross_minor, state.refunded_minor, state.monetary_minor) == (
        1,
        12000,
        53000,
        0,
    )
    assert state.refunds == 2
    assert of_grid(transitions, "value") == [
        (None, "medium", day(0), transitions[0].cause),
        ("medium", "low", day(1), "r1"),
        ("low", "none", day(2), "r2"),
    ]
    assert state.rfm_f == 1


def test_currency_conversion_is_exact_and_rounded_half_even() -> None:
    state, _ = run(
        [purchase(day(0), "10.00", "USD"), purchase(day(0), "1000", "JPY"), purchase(day(0), "0.01", "GBP")]
    )
    # 10.00 USD * 0.92 = 9.20 EUR; 1000 JPY * 0.0061 = 6.10 EUR; 0.01 GBP * 1.17 = 0.0117 -> 0.01 EUR
    assert state.gross_minor == 920 + 610 + 1
    with pytest.raises(UnknownCurrency, match="no conversion rate for currency 'BRL'"):
        run([purchase(day(0), "1.00", "BRL")])


def test_late_event_counts_in_f_and_m_but_never_moves_recency_back() -> None:
    state, _ = run([purchase(day(0), "10.00"), purchase(day(100), "10.00"), ev("web_visit", day(120))])
    late = apply(state, purchase(day(50), "2000.00", event_id="late"), DEFAULT)
    new = late.state
    assert (new.orders, new.gross_minor) == (3, 202000)
    assert new.last_purchase_at == day(100)
    assert new.clock == day(120)
    assert new.reactivated_at == day(100)  # from the in-order purchase at day 100 (at_risk then)
    value = [t for t in late.transitions if t.grid == "value"]
    assert [(t.from_segment, t.to_segment, t.effective_at, t.cause) for t in value] == [
        ("low", "top", day(120), "late")
    ]
    assert value[0].why["occurred_at"] == day(50).isoformat()
    assert value[0].why["late"] == "true"


def test_late_purchase_newer_than_the_last_one_moves_recency_forward_and_can_reactivate() -> None:
    state, _ = run([purchase(day(0)), ev("web_visit", day(300))])
    assert state.seg_lifecycle == "lost"
    late = apply(state, purchase(day(280), event_id="late"), DEFAULT)
    assert late.state.last_purchase_at == day(280)
    assert late.state.reactivated_at == day(280)
    assert of_grid(late.transitions, "lifecycle") == [("lost", "reactivated", day(300), "late")]


def test_late_purchase_before_first_moves_first_purchase_earlier() -> None:
    state, _ = run([ev("web_visit", day(0)), purchase(day(10)), ev("web_visit", day(12))])
    late = apply(state, purchase(day(5)), DEFAULT).state
    assert (late.first_purchase_at, late.last_purchase_at) == (day(5), day(10))
    assert late.first_seen_at == day(0)
    earlier = apply(late, ev("web_visit", day(-3)), DEFAULT).state
    assert (earlier.first_seen_at, earlier.last_seen_at, earlier.clock) == (day(-3), day(12), day(12))


def test_latest_value_fields_keep_the_newest_by_event_time() -> None:
    state, _ = run(
        [
            ev("survey_response", day(10), score=9),
            ev("survey_response", day(5), score=2),
            ev("loyalty", day(10), points_delta=10, tier="gold"),
            ev("loyalty", day(5), points_delta=5, tier="silver"),
            ev("loyalty", day(11), points_delta=-3),
            ev("profile_update", day(10), region="SE"),
            ev("profile_update", day(5), region="FR", birth_year=1990),
            ev("profile_update", day(12), gender="female", household=3),
        ]
    )
    assert (state.survey_score, state.survey_at, state.seg_satisfaction) == (9, day(10), "promoter")
    assert (state.loyalty_points, state.loyalty_tier, state.loyalty_tier_at) == (12, "gold", day(10))
    assert (state.region, state.birth_year, state.gender, state.household) == ("SE", 1990, "female", 3)
    assert (state.profile_at, state.seg_region, state.seg_age_band) == (day(12), "north", "age_35_44")


def test_each_declared_field_keeps_its_latest_value_whatever_the_arrival_order() -> None:
    """A late update of one field must not lose a newer value of another (replay and live then agree)."""
    updates = [
        ev("profile_update", day(1), birth_year=1990, region="FR", event_id="a"),
        ev("profile_update", day(2), birth_year=1960, event_id="b"),
        ev("profile_update", day(3), region="ES", gender="male", event_id="c"),
        ev("profile_update", day(4), household=2, gender="female", event_id="d"),
    ]
    results: set[tuple[object, ...]] = set()
    for order in itertools.permutations(updates):
        state, _ = run(list(order))
        results.add((state.birth_year, state.region, state.gender, state.household, state.profile_at))
        results.add((state.seg_age_band, state.seg_region, state.birth_year_at, state.region_at))
    assert results == {
        (1960, "ES", "female", 2, day(4)),
        ("age_65_plus", "south", day(2), day(3)),
    }


def test_a_state_stored_before_per_field_times_takes_profile_at_for_its_declared_fields() -> None:
    state, _ = run([ev("profile_update", day(5), birth_year=1990, event_id="a")])
    legacy = state._replace(birth_year_at=None)  # as stored before `birth_year_at` existed
    older = apply(legacy, ev("profile_update", day(4), birth_year=1960, event_id="b"), DEFAULT).state
    assert older.birth_year == 1990
    newer = apply(legacy, ev("profile_update", day(6), birth_year=1960, event_id="c"), DEFAULT).state
    assert (newer.birth_year, newer.birth_year_at) == (1960, day(6))
    # an update of another field pins the birth year's time first: a later late birth year still wins
    moved = apply(legacy, ev("profile_update", day(10), region="FR", event_id="d"), DEFAULT).state
    assert (moved.birth_year_at, moved.profile_at) == (day(5), day(10))
    late = apply(moved, ev("profile_update", day(7), birth_year=1970, event_id="e"), DEFAULT).state
    assert late.birth_year == 1970


def test_a_birth_year_after_the_events_year_is_refused() -> None:
    state, _ = run([purchase(day(0))])
    with pytest.raises(ValueError, match="birth_year 2090 is after the event's year 2026"):
        apply(state, ev("profile_update", day(1), birth_year=2090), DEFAULT)


def test_counters() -> None:
    state, _ = run(
        [
            ev("email_sent", day(0)),
            ev("email_unsubscribe", day(1)),
            ev("app_session", day(1), duration_seconds=30),
            ev("app_session", day(1)),
            ev("support_contact", day(2), channel="chat", resolved=False),
            ev("support_contact", day(2), channel="phone", resolved=True),
        ]
    )
    assert (state.emails_sent, state.unsubscribed, state.seg_email) == (1, True, "unsubscribed")
    assert (state.app_sessions, state.app_seconds) == (2, 30)
    assert (state.support_contacts, state.support_unresolved) == (2, 1)


def test_advance_is_idempotent_and_never_moves_the_clock_back() -> None:
    state, _ = run([purchase(day(0))])
    first = advance(state, day(100), DEFAULT)
    assert [t.to_segment for t in first.transitions if t.grid == "lifecycle"] == ["active", "at_risk"]
    assert first.state.clock == day(100)
    second = advance(first.state, day(100), DEFAULT)
    assert second.transitions == ()
    assert second.state == first.state
    back = advance(first.state, day(50), DEFAULT)
    assert back.state.clock == day(100)
    assert back.transitions == ()


def test_advance_of_an_unseen_customer_does_nothing() -> None:
    outcome = advance(CustomerState.new("c1"), day(10), DEFAULT)
    assert outcome == (CustomerState.new("c1"), ())
    assert next_due(CustomerState.new("c1"), DEFAULT) is None


def test_next_due_and_advance_to_it() -> None:
    state, _ = run([purchase(day(0))])
    due = next_due(state, DEFAULT)
    assert due == day(30)
    assert advance(state, due - timedelta(microseconds=1), DEFAULT).transitions == ()
    assert [t.effective_at for t in advance(state, due, DEFAULT).transitions] == [day(30), day(30)]


def test_erasure_exits_every_grid_and_forgets_everything() -> None:
    state, _ = run([purchase(day(0)), ev("web_visit", day(3))])
    erase = ev("customer_erased", day(2), event_id="erase")
    outcome = apply(state, erase, DEFAULT)
    assert outcome.state == CustomerState.new("c1")._replace(erased_at=day(3))  # the last event seen
    assert len(outcome.transitions) == 13  # 10 grids and 3 audiences
    assert {(t.to_segment, t.cause, t.effective_at) for t in outcome.transitions} == {(None, "erase", day(3))}
    assert outcome.transitions[0].from_segment == "new"
    assert outcome.transitions[0].why == {"rule": "customer erased"}
    assert apply(outcome.state, erase, DEFAULT) == (outcome.state, ())
    fresh = apply(
        CustomerState.new("c9"), ev("customer_erased", day(1), customer="c9", event_id="x"), DEFAULT
    )
    assert fresh == (CustomerState.new("c9")._replace(erased_at=day(1)), ())


def test_events_from_before_an_erasure_never_bring_the_customer_back() -> None:
    """Sent again after the erasure (same ids or new ones), or arriving late, a pre-erasure event has no
    effect; the first event dated after the erasure starts a new history."""
    profile = ev("profile_update", day(1), birth_year=1950, region="FR", event_id="prof-1")
    before = [purchase(day(0), "700.00", event_id="buy-1"), profile]
    state, _ = run([*before, ev("customer_erased", day(2), event_id="erase")])
    erased = state
    for event in (*before, purchase(day(2), "50.00", event_id="new-id-same-day"), ev("web_visit", day(1))):
        outcome = apply(state, event, DEFAULT)
        assert outcome == (erased, ()), event.event_id
    after = apply(state, purchase(day(3), "20.00", event_id="buy-2"), DEFAULT)
    assert (after.state.orders, after.state.gross_minor, after.state.birth_year) == (1, 2000, None)
    assert after.state.erased_at == day(2)
    assert of_grid(after.transitions, "lifecycle") == [(None, "new", day(3), "buy-2")]


def test_resegment_under_new_definitions_then_noop() -> None:
    state, _ = run([purchase(day(0), "150.00")])
    richer = definitions_with(value=SMALL_BIG)
    outcome = resegment(state, richer, day(1))
    assert [(t.grid, t.from_segment, t.to_segment, t.cause, t.effective_at) for t in outcome.transitions] == [
        ("value", "medium", "big", "definitions", day(1))
    ]
    assert outcome.state.definitions_version == richer.version
    assert resegment(outcome.state, richer, day(1)).transitions == ()
    assert resegment(CustomerState.new("c1"), richer, day(1)) == (CustomerState.new("c1"), ())


def test_a_return_to_definitions_applied_before_moves_a_dormant_customer_under_new_ids() -> None:
    """v2, back to v1, then v2 again: the same moves at the same instant (the clock did not move), which a
    consumer deduplicating by id must not take for a redelivery. The first change keeps its former id."""
    state, _ = run([purchase(day(0), "150.00")])
    v1 = DEFAULT
    v2 = definitions_with(value=SMALL_BIG)
    moves = []
    for d in (v2, v1, v2, v1):
        outcome = resegment(state, d, day(1))
        state = outcome.state
        moves += [(t.from_segment, t.to_segment, t.id, t.definitions_change) for t in outcome.transitions]
    assert [m[:2] for m in moves] == [("medium", "big"), ("big", "medium")] * 2
    assert len({m[2] for m in moves}) == 4
    assert [m[3] for m in moves] == [1, 2, 3, 4] and state.definitions_changes == 4
    first = moves[0][2]
    assert first == transition_id(
        state.customer_id, "value", "medium", "big", day(1), "definitions", v2.version
    )
    assert moves[2][2] == transition_id(
        state.customer_id, "value", "medium", "big", day(1), "definitions", v2.version, 3
    )
    assert resegment(state, v1, day(1)).state.definitions_changes == 4  # the same version: no change


def test_resegment_removes_and_adds_audiences() -> None:
    state, _ = run([purchase(day(0), "150.00")])
    other = definitions_with(audiences={"buyers": "orders >= 1"})
    outcome = resegment(state, other, day(0))
    assert sorted((t.grid, t.from_segment, t.to_segment) for t in outcome.transitions) == [
        ("audience:buyers", None, "member"),
        ("audience:unhappy_recent_buyers", "not_member", None),
        ("audience:vip_recent", "not_member", None),
        ("audience:win_back", "not_member", None),
    ]
    removed = next(t for t in outcome.transitions if t.grid == "audience:win_back")
    assert removed.why == {"rule": "grid no longer defined"}
    assert outcome.state.audiences == (("buyers", "member"),)


def test_apply_and_advance_align_to_new_definitions_first() -> None:
    state, _ = run([purchase(day(0), "150.00")])
    richer = definitions_with(value=SMALL_BIG)
    outcome = apply(state, ev("web_visit", day(1), event_id="w"), richer)
    assert [(t.grid, t.to_segment, t.cause, t.effective_at) for t in outcome.transitions] == [
        ("value", "big", "definitions", day(0))
    ]
    timed = advance(state, day(40), richer)
    assert [(t.grid, t.to_segment, t.cause) for t in timed.transitions] == [
        ("value", "big", "definitions"),
        ("lifecycle", "active", "time"),
        ("rfm", "promising", "time"),
    ]
    assert next_due(state, richer) == day(30)


def test_base_currency_change_requires_a_replay() -> None:
    state, _ = run([purchase(day(0))])
    usd = definitions_with(currency="USD", currency_rates={"EUR": "1.08"})
    with pytest.raises(DefinitionsError, match="replaying the events"):
        resegment(state, usd, day(1))


def test_transition_ids_are_deterministic() -> None:
    events = [purchase(day(0), event_id="a"), refund(day(1), "5.00", event_id="b")]
    _, one = run(events)
    _, two = run(events)
    assert [t.id for t in one] == [t.id for t in two]
    assert len({t.id for t in one}) == len(one)
    assert all(len(t.id) == 32 for t in one)


def _unexplained(transitions: tuple[Transition, ...] | list[Transition]) -> list[tuple[object, ...]]:
    return [
        (t.customer_id, t.grid, t.from_segment, t.to_segment, t.effective_at, t.cause, t.definitions_version,
         t.definitions_change)
        for t in transitions
    ]  # fmt: skip


def test_without_explain_the_same_transitions_come_without_why_nor_id() -> None:
    """explain=False (a replay that publishes nothing) changes only the why and the id, both empty: states,
    every other field, order identical, through a first event, a late one, an advance and a realignment to
    new definitions."""
    events = [
        purchase(day(0), "150.00", event_id="a"),
        purchase(day(120), "20.00", event_id="b"),
        purchase(day(50), "2000.00", event_id="late"),
    ]
    richer = definitions_with(value=SMALL_BIG)
    explained, quiet = CustomerState.new("c1"), CustomerState.new("c1")
    for event in events:
        one, two = apply(explained, event, DEFAULT), apply(quiet, event, DEFAULT, explain=False)
        assert two.state == one.state
        assert _unexplained(two.transitions) == _unexplained(one.transitions)
        assert all(t.why is NO_WHY and t.id == NO_ID for t in two.transitions)
        assert all(t.why and len(t.id) == 32 for t in one.transitions)
        explained, quiet = one.state, two.state
    for one, two in (
        (advance(explained, day(400), richer), advance(quiet, day(400), richer, explain=False)),
        (resegment(explained, richer, day(130)), resegment(quiet, richer, day(130), explain=False)),
        (
            apply(explained, ev("web_visit", day(130), event_id="w"), richer),
            apply(quiet, ev("web_visit", day(130), event_id="w"), richer, explain=False),
        ),
    ):
        assert one.transitions and two.state == one.state
        assert _unexplained(two.transitions) == _unexplained(one.transitions)
        assert all(t.why is NO_WHY and t.id == NO_ID for t in two.transitions)


def test_a_tombstone_state_keeps_older_events_and_older_erasures_out() -> None:
    """What the store reads back for an erased customer (its blank state erased at that instant, nothing
    else): older events have no effect, an older erasure leaves the later erasure time."""
    tomb = CustomerState.new("c1")._replace(erased_at=day(10))
    for event in (purchase(day(9), event_id="late"), ev("web_visit", day(10), event_id="same-instant")):
        assert apply(tomb, event, DEFAULT) == (tomb, ())
    older = apply(tomb, ev("customer_erased", day(4), event_id="old-erase"), DEFAULT)
    assert (older.state.erased_at, older.transitions) == (day(10), ())
    fresh = apply(tomb, purchase(day(11), "20.00", event_id="new"), DEFAULT)
    assert (fresh.state.orders, fresh.state.erased_at) == (1, day(10))
    assert of_grid(fresh.transitions, "lifecycle") == [(None, "new", day(11), "new")]


def test_a_resent_erasure_never_erases_the_customer_who_came_back() -> None:
    """A producer resending the erasure (same id, same date) after the customer's first later purchase: the
    erasure covers it, the new history stays (whichever batch the resend falls in)."""
    erase = ev("customer_erased", day(2), event_id="erase")
    state, _ = run([purchase(day(0), event_id="buy-1"), erase, purchase(day(3), "20.00", event_id="buy-2")])
    assert apply(state, erase, DEFAULT) == (state, ())
    assert apply(state, ev("customer_erased", day(1), event_id="older"), DEFAULT) == (state, ())


def test_erased_at_does_not_depend_on_a_sweep_before_a_late_erasure() -> None:
    """A sweep moves the clock to due instants, not to event times: erased_at is the later of the erasure's
    date and the last event seen, so a later purchase starts a new history in live and in replay alike."""
    bought, _ = run([purchase(day(0), event_id="buy-1")])
    swept = advance(bought, day(95), DEFAULT).state
    late_erasure = ev("customer_erased", day(80), event_id="erase")
    for state in (bought, swept):
        erased = apply(state, late_erasure, DEFAULT).state
        assert erased.erased_at == day(80)
        back = apply(erased, purchase(day(85), "20.00", event_id="buy-2"), DEFAULT)
        assert (back.state.orders, back.state.gross_minor) == (1, 2000)
