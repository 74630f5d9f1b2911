"""Re-segmentation: re-classify the grids an event or the passing of time can affect, in place.

Works on the state's values as a list (`v`), turned into a state for the grid functions, so that
`apply` builds one new state per event. Keeps the cached due times (`due_*`, `next_due_at`) in step
with the segments, and turns changes into `Transition`s with their `why`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from segmentation import audiences, rfm
from segmentation.definitions import Definitions
from segmentation.folding import TOUCHES
from segmentation.grids import ASSESS, EXPLAIN, GRID_ORDER, TIME_GRIDS, Assessor
from segmentation.instants import iso
from segmentation.rule_windows import SOURCE
from segmentation.rules import FieldType, Rule
from segmentation.state import (
    I_AUDIENCES,
    I_LIFECYCLE_SINCE,
    I_NEXT_DUE,
    I_RFM_F,
    I_RFM_M,
    I_RFM_R,
    CustomerState,
    state_of,
)
from segmentation.transition import (
    CAUSE_DEFINITIONS,
    NO_ID,
    NO_WHY,
    Transition,
    id_cause,
    new_transition,
    transition_key,
)

__all__ = ["ALL", "SEG", "Change", "plan_for", "reevaluate", "transitions"]

_FIELDS = CustomerState._fields
SEG = {grid: _FIELDS.index(f"seg_{grid}") for grid in GRID_ORDER}
_DUE = {grid: _FIELDS.index(f"due_{grid}") for grid in TIME_GRIDS}
_DUE_AUDIENCES = _FIELDS.index("due_audiences")
_DUES = (*_DUE.values(), _DUE_AUDIENCES)
# grid -> (assessor, position of its segment, position of its due time or -1), one lookup per grid
_SPECS: dict[str, tuple[Assessor, int, int]] = {
    grid: (ASSESS[grid], SEG[grid], _DUE.get(grid, -1)) for grid in GRID_ORDER
}
_SEG_LIFECYCLE = SEG["lifecycle"]
_NO_SCORES = (None, None, None)
ALL = "all"
_first = itemgetter(0)

Change = tuple[str, str | None, str | None]  # grid, from, to
_Entry = tuple[str, str]
_Step = tuple[Rule, str, bool, bool, tuple[tuple[str, audiences.Getter], ...], str, tuple[_Entry, _Entry]]


@dataclass(frozen=True, slots=True)
class _Plan:
    """What each event type and each grid change makes dirty among the audiences (per definitions)."""

    rules: tuple[Rule, ...]  # in name order, as the state keeps them
    names: tuple[str, ...]
    timed: frozenset[str]
    # per rule, in name order: rule, name, whether it has `within`, whether time can only make it false
    # (see audiences.fades_only), its field getters, its grid name and its two possible (name, segment)
    # entries of `CustomerState.audiences` (not_member, member: built once, shared by every state)
    steps: tuple[_Step, ...]
    by_event: dict[str, frozenset[str]]
    by_grid: dict[str, frozenset[str]]
    by_name: dict[str, tuple[Rule, tuple[tuple[str, audiences.Getter], ...]]]  # rule and its getters


def plan_for(d: Definitions) -> _Plan:
    plan: _Plan | None = d.memo.get("plan")
    if plan is None:
        timed_kinds = (FieldType.DATETIME, FieldType.FALLING)  # fields through which time alone acts
        datetime_fields = {f for f, kind in audiences.FIELDS.items() if kind in timed_kinds}
        datetime_fields.add(SOURCE)  # the recent orders: windowed aggregates change with time too
        rules = tuple(sorted(d.audiences, key=lambda rule: rule.name))
        plan = _Plan(
            rules,
            tuple(rule.name for rule in rules),
            frozenset(r.name for r in rules if r.fields & datetime_fields),
            tuple(
                (
                    r,
                    r.name,
                    bool(r.fields & datetime_fields),
                    audiences.fades_only(r.expr),
                    audiences.getters(r, d.clv),
                    audiences.PREFIX + r.name,
                    ((r.name, audiences.NOT_MEMBER), (r.name, audiences.MEMBER)),
                )
                for r in rules
            ),
            {
                kind: frozenset(r.name for r in rules if r.fields & touched)
                for kind, touched in TOUCHES.items()
            },
            {
                grid: frozenset(
                    r.name for r in rules if any(audiences.SEGMENT_FIELDS.get(f) == grid for f in r.fields)
                )
                for grid in GRID_ORDER
            },
            {rule.name: (rule, audiences.getters(rule, d.clv)) for rule in rules},
        )
        d.memo["plan"] = plan
    return plan


def reevaluate(
    v: list[Any],
    grids: tuple[str, ...],
    dirty: frozenset[str] | str,
    d: Definitions,
    now: datetime,
    plan: _Plan | None = None,
) -> list[Change]:
    """Re-classify `grids` and the `dirty` audiences on the totals in `v`, updating `v` in place.

    `plan` is `plan_for(d)` when the caller already holds it (one lookup per event, not two).
    """
    current = state_of(v)
    changes: list[Change] = []
    due_changed = False
    segment: str | None
    for grid in grids:
        assess, index, due_index = _SPECS[grid]
        if grid == "rfm":  # R, F, M are kept too
            scores, segment, due = rfm.assess(current, d.rfm, now)
            v[I_RFM_R], v[I_RFM_F], v[I_RFM_M] = scores or _NO_SCORES
        else:
            segment, due = assess(current, d, now)
        old = v[index]
        if segment != old:
            changes.append((grid, old, segment))
            v[index] = segment
            if index == _SEG_LIFECYCLE:
                v[I_LIFECYCLE_SINCE] = now
        if due_index >= 0 and due != v[due_index]:
            v[due_index] = due
            due_changed = True
    if plan is None:
        plan = plan_for(d)
    if changes and isinstance(dirty, frozenset):
        for grid, _, _ in changes:
            dirty = dirty | plan.by_grid[grid]
    if dirty:
        if changes:  # the audiences read the new segments
            current = state_of(v)
        audience_changes, timed_due = _reevaluate_audiences(current, v, dirty, d, now, plan)
        changes.extend(audience_changes)
        due_changed = due_changed or timed_due
    if due_changed:
        earliest = None
        for index in _DUES:
            due = v[index]
            if due is not None and (earliest is None or due < earliest):
                earliest = due
        v[I_NEXT_DUE] = earliest
    return changes


def _reevaluate_audiences(
    current: CustomerState,
    v: list[Any],
    dirty: frozenset[str] | str,
    d: Definitions,
    now: datetime,
    plan: _Plan,
) -> tuple[list[Change], bool]:
    """Evaluate the dirty audiences; when one with `within` is dirty, all of those are (their min due).

    Audiences are kept and evaluated in name order; a state whose audience names differ from the
    definitions' (new definitions) is first expanded to them, exiting the audiences no longer defined.
    """
    previous = current.audiences
    changes: list[Change] = []
    everything = dirty == ALL
    # Under one definitions version the names always match (apply realigns other versions first), so
    # they are compared only when everything is re-evaluated (first event, time step, resegment).
    if (everything or len(previous) != len(plan.names)) and tuple(map(_first, previous)) != plan.names:
        known = dict(previous)
        changes.extend(
            (audiences.PREFIX + name, old, None) for name, old in previous if name not in plan.names
        )
        previous = tuple((name, known.get(name, "")) for name in plan.names)
    timed_dirty = everything or not plan.timed.isdisjoint(dirty)
    due: datetime | None = None  # the earliest next change of the timed audiences
    after: list[_Entry] | None = None  # copied from `previous` at the first change only
    scale = d.scale
    position = -1
    for (rule, name, timed, fading, getters, grid, entries), entry in zip(plan.steps, previous, strict=True):
        position += 1
        timed = timed and timed_dirty
        if everything or timed or name in dirty:
            values = {}
            for field, getter in getters:  # a loop, not a comprehension: no extra frame per rule
                values[field] = getter(current, scale)
            inside = rule.evaluate(values, now)
            if timed and (inside or not fading):
                change = rule.next_change(values, now, inside)
                if change is not None and (due is None or change < due):
                    due = change
            new = entries[1] if inside else entries[0]
            if new[1] != entry[1]:
                changes.append((grid, entry[1] or None, new[1]))
                if after is None:
                    after = list(previous)
                after[position] = new
    v[I_AUDIENCES] = previous if after is None else tuple(after)
    if not timed_dirty or due == v[_DUE_AUDIENCES]:
        return changes, False
    v[_DUE_AUDIENCES] = due
    return changes, True


def _explain(
    grid: str, s: CustomerState, d: Definitions, now: datetime, segment: str | None
) -> dict[str, str]:
    if segment is None:
        return {"rule": "grid no longer defined"}
    explain = EXPLAIN.get(grid)
    if explain is not None:
        return explain(s, d, now, segment)
    rule, readers = plan_for(d).by_name[grid[len(audiences.PREFIX) :]]  # an audience
    return audiences.explain(s, rule, d.scale, now, readers)


def transitions(
    s: CustomerState,
    changes: list[Change],
    d: Definitions,
    now: datetime,
    cause: str,
    extra: dict[str, str],
    explain: bool = True,
) -> list[Transition]:
    """The changes as transitions; without `explain` (nothing will publish them) their why is `NO_WHY` and
    their id `NO_ID`, all else the same. A definitions change's moves carry the state's count of them
    (`definitions_changes`, in their ids)."""
    out = []
    customer, version = s.customer_id, d.version
    change = s.definitions_changes if cause == CAUSE_DEFINITIONS else 0
    if not explain:
        for grid, old, new in changes:
            out.append(new_transition(NO_ID, customer, grid, old, new, now, cause, version, NO_WHY, change))
        return out
    when, key_cause = iso(now), id_cause(cause, version, change)
    for grid, old, new in changes:
        key = transition_key(customer, grid, old, new, when, key_cause)
        why = _explain(grid, s, d, now, new)
        if extra:
            why.update(extra)
        frozen = MappingProxyType(why)
        out.append(new_transition(key, customer, grid, old, new, now, cause, version, frozen, change))
    return out
