"""What a worker publishes must not depend on when its due sweeps ran or how its log was cut into batches.

A live worker sweeps whenever its timer fires; a replay sweeps after every few flushes. Both run the same pure
steps (`streams.worker.batch.apply_batch` per batch, `advance_all` per sweep), so the property is checked
on them directly, without services: for any log of a few customers (erasures, late events and redelivered
duplicates included), any cut into batches and any sweep instants, the transitions (ordered per customer)
and the final states equal those of the whole log applied as one batch, then swept once to the same end.

A sweep instant is drawn at or before every event still to come (a low watermark): a sweep beyond an event
not yet applied turns that event into a late one, which is a different log of effects by design
(docs/semantics.md, "Late events").
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from segmentation import CustomerState, Event, Transition, advance, apply, parse_event
from segmentation.state_mapping import state_to_mapping
from streams.store.writes import Known
from streams.worker.batch import BatchResult, Record, advance_all, apply_batch
from tests.unit.seg_helpers import DEFAULT, day, definitions_with, ev, of_grid, purchase
from tests.unit.test_properties import FAST, _payloads

CUSTOMERS = ("a", "b", "c")
_DAYS = st.sampled_from((0, 1, 10, 30, 45, 60, 90, 120, 200))
_BUY = st.just({"type": "purchase", "order_id": "o", "amount": "40.00", "currency": "EUR", "channel": "web"})


@st.composite
def shared_logs(draw: Any) -> list[Event]:
    """One partition's log: events of a few customers, mostly in time order with late ones among them,
    erasures, and redeliveries of earlier events (same id and content)."""
    events: list[Event] = []
    now = day(0)
    for index in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(("event", "event", "event", "erasure", "again")))
        if kind == "again" and events:
            events.append(draw(st.sampled_from(events)))
            continue
        payload = {"type": "customer_erased"} if kind == "erasure" else draw(_BUY | _payloads)
        # whole days mostly, so that events often fall exactly on due instants (purchase + N days)
        step = timedelta(days=draw(_DAYS), seconds=draw(st.just(0) | st.integers(0, 86_399)))
        late = draw(st.integers(0, 4)) == 0  # mostly in time order, as logs are; sometimes older
        at = now - step if late else now + step
        now = max(now, at)
        raw = {
            "event_id": f"e{index}",
            "customer_id": draw(st.sampled_from(CUSTOMERS)),
            "occurred_at": at.isoformat(),
            "schema_version": 1,
        }
        if payload["type"] == "purchase":  # each order once (an order sent again is a dead letter)
            payload = {**payload, "order_id": f"o{index}"}
        events.append(parse_event({**raw, **payload}))
    return events


def _batch(events: list[Event], start: int, held: dict[str, Known]) -> BatchResult:
    records = [Record("events", 0, start + n, e.customer_id.encode(), None) for n, e in enumerate(events)]
    return apply_batch(records, (list(zip(records, events, strict=True)), []), held, DEFAULT)


def _sweep(held: dict[str, Known], until: datetime, out: list[Transition]) -> None:
    """The worker's sweep: the customers its due index returns (next due at or before the clock)."""
    due = {
        cid: known for cid, known in held.items() if (d := known[0].next_due_at) is not None and d <= until
    }
    result = advance_all(due, until, DEFAULT)
    out.extend(result.transitions)
    held.update(result.states)


def _per_customer(transitions: list[Transition]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in transitions:
        out.setdefault(t.customer_id, []).append(t.id)
    return out


def _final(held: dict[str, Known]) -> dict[str, dict[str, str]]:
    return {cid: state_to_mapping(state) for cid, (state, _) in held.items()}


@FAST
@given(shared_logs(), st.data())
def test_sweeps_and_batch_sizes_change_nothing(events: list[Event], data: Any) -> None:
    end = max(e.occurred_at for e in events) + timedelta(days=data.draw(st.integers(0, 400)))

    # the whole log as one batch, then one sweep to the end
    held: dict[str, Known] = {}
    straight = _batch(events, 0, held)
    held.update(straight.states)
    expected = list(straight.transitions)
    _sweep(held, end, expected)

    # the same log in random batches, with sweeps at random instants in between
    held, published, start = {}, [], 0
    while start < len(events):
        size = data.draw(st.integers(1, len(events) - start), label="batch size")
        result = _batch(events[start : start + size], start, held)
        held.update(result.states)
        published.extend(result.transitions)
        start += size
        if start < len(events) and data.draw(st.booleans(), label="sweep now"):
            low = min(e.occurred_at for e in events[start:])  # no event to come is older than the sweep
            back = timedelta(
                seconds=data.draw(st.just(0) | st.integers(0, 200 * 86_400), label="sweep before low")
            )
            _sweep(held, low - back, published)
    _sweep(held, end, published)

    assert _per_customer(published) == _per_customer(expected)
    assert sorted(t.id for t in published) == sorted(t.id for t in expected)
    assert _final(held) == _final(_swept_straight(events, end))


def _swept_straight(events: list[Event], end: datetime) -> dict[str, Known]:
    held: dict[str, Known] = {}
    result = _batch(events, 0, held)
    held.update(result.states)
    _sweep(held, end, [])
    return held


def test_erasure_runs_the_time_driven_changes_due_before_it() -> None:
    """Bought on day 0, erased on day 100: the moves of days 30 and 90 are published, then the exit from
    at_risk, whether a sweep ran on day 95 or not (docs/semantics.md, "Erasure")."""
    state = apply(CustomerState.new("c1"), purchase(day(0), event_id="buy"), DEFAULT).state
    erase = ev("customer_erased", day(100), event_id="gone")
    direct = apply(state, erase, DEFAULT)
    swept = advance(state, day(95), DEFAULT)
    after_sweep = apply(swept.state, erase, DEFAULT)
    assert of_grid(direct.transitions, "lifecycle") == [
        ("new", "active", day(30), "time"),
        ("active", "at_risk", day(90), "time"),
        ("at_risk", None, day(100), "gone"),
    ]
    assert [t.id for t in direct.transitions] == [
        t.id for t in (*swept.transitions, *after_sweep.transitions)
    ]
    erased = CustomerState.new("c1")._replace(erased_at=day(100))
    assert direct.state == after_sweep.state == erased


def test_a_visit_made_late_by_a_sweep_still_moves_last_seen_forward() -> None:
    """A live sweep at the customer's due instant (day 30) turns a visit of day 29 23:00 that arrives just
    after it into a late event. It is still the customer's latest activity: `last_seen_at` moves to it and a
    "not seen for 30 days" audience stays out, as in a replay where no sweep ran in between. Before, the
    late branch kept the purchase's day 0 and the customer sat in the audience until their next event."""
    d = definitions_with(audiences={"dormant": "not (last_seen_at within 30 days)"})
    bought = purchase(day(0), event_id="p1")
    visit = ev("web_visit", day(29) + timedelta(hours=23), event_id="v1")
    replayed = apply(apply(CustomerState.new("c1"), bought, d).state, visit, d).state
    swept = advance(apply(CustomerState.new("c1"), bought, d).state, day(30), d).state
    live = apply(swept, visit, d).state
    for state in (advance(replayed, day(31), d).state, advance(live, day(31), d).state):
        assert state.last_seen_at == day(29) + timedelta(hours=23)
        assert dict(state.audiences)["dormant"] == "not_member"
    assert apply(live, ev("web_visit", day(1), event_id="v0"), d).state.last_seen_at == visit.occurred_at


def test_a_batch_counts_the_duplicates_it_skips() -> None:
    """A redelivered or resent event has no effect (its id is remembered) but is counted: the worker's
    `segstream_duplicate_events_total` and the replay summary's `duplicates` say how many were skipped."""
    once = [purchase(day(0), event_id="d1"), purchase(day(3), event_id="d2")]
    log = [once[0], once[0], once[1], once[0]]
    records = [Record("events", 0, n, b"c1", None) for n in range(len(log))]
    result = apply_batch(records, (list(zip(records, log, strict=True)), []), {}, DEFAULT)
    assert (result.duplicates, result.states["c1"][0].orders, result.dead_letters) == (2, 2, [])
