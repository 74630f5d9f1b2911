"""apply / advance / next_due / resegment: how a customer's segments evolve with events and time.

Pure functions in the eventsourcing style (`apply(state, event) -> new state`), deterministic:
the result depends on the state, the event and the definitions only; time is the event time.

* `apply` ignores a duplicate event id, and an event dated at or before the customer's erasure
  (`erased_at`: the erasure covers it), with no effect at all; otherwise it first `advance`s the state to
  the event time (time-driven transitions due up to and including it, each stamped with its own due
  time and cause `time`; an erasure too, before its exits), folds the event into the totals,
  re-evaluates the grids the event can affect and emits one transition per changed grid, cause = event
  id, effective at the state's clock after the event (the event time; for a late event, the clock the
  state had already reached).
* `explain=False` (apply, advance, resegment) leaves every transition's `why` and `id` empty (`NO_WHY`,
  `NO_ID`) and changes nothing else: for a caller that publishes no transition (a replay without --emit),
  where building the whys and hashing the ids were a sizeable share of the core's work and nothing read
  them (a history entry keeps what recomputes the id).
* `advance` applies every time-driven change up to `until` in time order; `next_due` is when the next
  one happens. Both use the due times cached in the state (`due_*`, `next_due_at`).
* `resegment` re-evaluates every grid under other definitions (cause `definitions`); `apply` and
  `advance` call it first when the state was built with another definitions version.
See docs/semantics.md for late events, refunds, currencies and erasure.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from typing import Any

from segmentation import audiences, rfm
from segmentation.config_reading import DefinitionsError
from segmentation.definitions import Definitions
from segmentation.duplicates import event_key, remember, seen, trim
from segmentation.events import Event
from segmentation.folding import FOLDS
from segmentation.grids import GRID_ORDER, TIME_GRIDS
from segmentation.instants import iso
from segmentation.limits import check_not_too_early
from segmentation.reevaluation import ALL, Change, plan_for, reevaluate, transitions
from segmentation.state import (
    I_CLOCK,
    I_CURRENCY,
    I_DEFINITIONS_CHANGES,
    I_FIRST_SEEN,
    I_LAST_PURCHASE,
    I_LAST_SEEN,
    I_RECENT,
    I_RECENT_ORDERS,
    I_RFM_R,
    I_VERSION,
    CustomerState,
    state_of,
)
from segmentation.transition import (
    CAUSE_DEFINITIONS,
    CAUSE_TIME,
    ERASURE_RULE,
    Outcome,
    Transition,
    outcome_of,
)

__all__ = ["advance", "apply", "next_due", "resegment"]


def _stamp(v: list[Any], d: Definitions, now: datetime) -> None:
    v[I_CLOCK], v[I_VERSION], v[I_CURRENCY] = now, d.version, d.currency


def resegment(state: CustomerState, definitions: Definitions, at: datetime, explain: bool = True) -> Outcome:
    """Re-evaluate every grid under `definitions` at max(clock, at); changes carry cause `definitions`.

    To attribute time-driven changes before `at` to time, `advance` under the old definitions first.
    A state never segmented (no event yet) is returned unchanged; a second call is a no-op.
    """
    if state.clock is None:
        return Outcome(state)
    if state.currency != definitions.currency:
        raise DefinitionsError(
            f"base currency changed from {state.currency} to {definitions.currency}: stored money cannot be"
            " converted after the fact; rebuild the state by replaying the events"
        )
    now = max(state.clock, at)
    v = list(state)
    if state.definitions_version != definitions.version:
        v[I_DEFINITIONS_CHANGES] = state.definitions_changes + 1
    _stamp(v, definitions, now)
    v[I_RECENT] = trim(state.recent_ids, definitions.recent_event_ids)
    kept = definitions.recent_orders  # a smaller record under the new definitions keeps the newest orders
    v[I_RECENT_ORDERS] = state.recent_orders[-kept:] if kept else ()
    changes = reevaluate(v, GRID_ORDER, ALL, definitions, now)
    new = state_of(v)
    return Outcome(new, tuple(transitions(new, changes, definitions, now, CAUSE_DEFINITIONS, {}, explain)))


def _align(state: CustomerState, d: Definitions, out: list[Transition], explain: bool) -> CustomerState:
    """Bring a state built under other definitions to `d` (appending the transitions to `out`)."""
    if state.clock is None:
        return state
    outcome = resegment(state, d, state.clock, explain)
    out.extend(outcome.transitions)
    return outcome.state


def advance(state: CustomerState, until: datetime, definitions: Definitions, explain: bool = True) -> Outcome:
    """Apply every time-driven change due at or before `until`, in time order; the clock ends at `until`."""
    out: list[Transition] = []
    if state.definitions_version != definitions.version or state.seg_promotion is None:
        state = _align(state, definitions, out, explain)
    if state.clock is None:
        return Outcome(state, ())
    due = state.next_due_at
    while due is not None and due <= until:
        v = list(state)
        v[I_CLOCK] = due
        changes = reevaluate(v, TIME_GRIDS, ALL, definitions, due)
        state = state_of(v)
        out.extend(transitions(state, changes, definitions, due, CAUSE_TIME, {}, explain))
        due = state.next_due_at
    if until > (state.clock or until):
        v = list(state)
        v[I_CLOCK] = until
        last = state.last_purchase_at
        if last is not None:
            v[I_RFM_R] = rfm.recency_score(definitions.rfm, last, until)
        state = state_of(v)
    return Outcome(state, tuple(out))


def next_due(state: CustomerState, definitions: Definitions) -> datetime | None:
    """Earliest instant after `state.clock` at which a segment changes if no event arrives."""
    if (state.definitions_version != definitions.version or state.seg_promotion is None) and state.clock:
        return resegment(state, definitions, state.clock).state.next_due_at
    return state.next_due_at


def apply(state: CustomerState, event: Event, definitions: Definitions, explain: bool = True) -> Outcome:
    """Fold one validated event into the state; see the module docstring for the exact order of effects."""
    event_id = event.event_id
    key = event_key(event_id)
    if seen(state.recent_ids, key):  # among the ids remembered
        return outcome_of(state, ())
    if event.customer_id != state.customer_id:
        raise ValueError(
            f"event {event_id!r} is for customer {event.customer_id!r}, not {state.customer_id!r}"
        )
    if "\x1f" in event_id:  # U+001F separated the ids of storage format 4's window: still refused
        raise ValueError(f"event id {event_id!r} contains a control character")
    kind = event.type
    t: datetime = event.occurred_at
    erased = state.erased_at
    if erased is not None and t <= erased:  # the erasure covers it (an erasure too, a resent one): no effect
        return outcome_of(state, ())
    if (
        t < definitions.earliest_event_time and kind != "customer_erased"
    ):  # privacy: honoured whatever its date
        check_not_too_early(kind, t, definitions)
    out: list[Transition] = []
    # other definitions, or a hash stored before the purchase-depth grids (no promotion segment yet)
    if state.definitions_version != definitions.version or state.seg_promotion is None:
        state = _align(state, definitions, out, explain)
    due = state.next_due_at
    if due is not None and due <= t:
        outcome = advance(state, t, definitions, explain)
        state = outcome.state
        out.extend(outcome.transitions)
    if kind == "customer_erased":  # after the changes due by then: a sweep in between changes nothing
        return _erase(state, event_id, t, definitions, out)
    clock = state.clock
    v: list[Any] = list(state)
    late = False
    if clock is None:  # first event: every grid gets its first segment
        now = v[I_FIRST_SEEN] = v[I_LAST_SEEN] = t
        v[I_VERSION], v[I_CURRENCY] = definitions.version, definitions.currency
    elif t >= clock:  # in order (last_seen_at <= clock <= t)
        now = v[I_LAST_SEEN] = t
    else:  # late: the state stays at its clock
        now, late = clock, True
        if t < state.first_seen_at:  # type: ignore[operator]
            v[I_FIRST_SEEN] = t
        last_seen = state.last_seen_at  # a sweep moves the clock, not this: it may be before t
        if last_seen is None or t > last_seen:
            v[I_LAST_SEEN] = t
    v[I_CLOCK] = now
    v[I_RECENT] = remember(state.recent_ids, key, definitions.recent_event_ids)
    grids = FOLDS[kind](state, event, definitions, v, t)
    last_purchase = v[I_LAST_PURCHASE]
    if last_purchase is not None and "rfm" not in grids:  # keep R as of the clock (rfm.recency_score)
        v[I_RFM_R] = 5 - bisect_right(definitions.rfm.recency_days, (now - last_purchase).days)
    if clock is None:
        changes = reevaluate(v, GRID_ORDER, ALL, definitions, now)
    else:
        plan = plan_for(definitions)
        dirty = plan.by_event[kind]
        changes = reevaluate(v, grids, dirty, definitions, now, plan) if grids or dirty else []
    new = state_of(v)
    if not changes and not out:
        return outcome_of(new, ())
    if changes:
        extra = {"occurred_at": iso(t), "late": "true"} if late and explain else {}
        out.extend(transitions(new, changes, definitions, now, event_id, extra, explain))
    return outcome_of(new, tuple(out))


def _erase(
    state: CustomerState, event_id: str, t: datetime, d: Definitions, out: list[Transition]
) -> Outcome:
    """Exit every grid (X -> None), then forget everything but `erased_at`, the instant the erasure covers.

    `state` was already advanced to `t` (time-driven changes due at or before it are in `out`), as for any
    event: otherwise the exits would depend on whether a sweep ran between the last event and the erasure."""
    now = t if state.clock is None else max(state.clock, t)
    segments: list[tuple[str, str | None]] = [
        ("lifecycle", state.seg_lifecycle), ("rfm", state.seg_rfm), ("value", state.seg_value),
        ("email", state.seg_email), ("channel", state.seg_channel), ("age_band", state.seg_age_band),
        ("region", state.seg_region), ("satisfaction", state.seg_satisfaction),
        ("category", state.seg_category), ("promotion", state.seg_promotion), ("clv", state.seg_clv),
    ]  # fmt: skip
    changes: list[Change] = [(grid, segment, None) for grid, segment in segments if segment is not None]
    changes += [(audiences.PREFIX + name, segment, None) for name, segment in state.audiences]
    version = state.definitions_version or d.version
    why = {"rule": ERASURE_RULE}
    out.extend(
        Transition.create(state.customer_id, grid, old, None, now, event_id, version, why)
        for grid, old, _ in changes
    )
    # what it covers: every event seen (a sweep moves `clock`, not `last_seen_at`: erased_at must not depend
    # on whether one ran), and so every earlier erasure (`apply` reaches here only for t > erased_at); a
    # resent erasure is covered by it, so no id is kept
    seen = state.last_seen_at
    erased = t if seen is None or seen < t else seen
    return outcome_of(CustomerState.new(state.customer_id)._replace(erased_at=erased), tuple(out))
