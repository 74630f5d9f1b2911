"""A customer's capped transition history and the "which segment on date D" answer derived from it.

Up to the customer's clock the history is the record. Beyond it, no stored transition can say what time did
since (a customer at_risk on its clock may be lost by D), so the stored state is advanced to D with the
core's `advance` (pure): the answer is `projected`, i.e. what the worker will publish if no event of the
customer arrives before D, or `beyond_clock` (segment unknown) when the reader lacks the definitions the
state was built with.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from pydantic import Field

from segmentation import CustomerState, Definitions, advance
from segmentation.explanation import current_why
from segmentation.state_mapping import readable_fields, state_from_mapping
from streams.read.profile import Answer
from streams.store import history_format


class HistoryEntry(Answer):
    grid: str
    from_segment: str | None
    to_segment: str | None
    effective_at: datetime
    cause: str
    id: str
    why: dict[str, str] = Field(
        description="the rule and values that keep the customer in this segment, as of its clock: only on the"
        " entry that put it in its current segment of the grid (past entries keep no why; every"
        " transition's own is on the transitions topic)"
    )


class History(Answer):
    customer_id: str
    entries: list[HistoryEntry] = Field(description="oldest first")
    trimmed: bool = Field(description="older transitions were dropped (capacity: history_size)")
    why: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="per grid, why the customer is in its current segment, as of its clock (derived from the"
        " state with the definitions it was built with; empty when the reader's definitions are others)",
    )


class SegmentAt(Answer):
    customer_id: str
    grid: str
    as_of: datetime | None
    segment: str | None
    status: Literal[
        "current", "known", "not_yet", "beyond_history", "projected", "beyond_clock", "unknown_customer"
    ]
    since: datetime | None = None
    transition_id: str | None = None
    why: dict[str, str] | None = None


def segment_at(history: History, grid: str, as_of: datetime) -> SegmentAt:
    """The last transition of `grid` effective at or before `as_of` decides; without one, either the customer
    was not in the grid yet (its first transition, from none, is kept) or the history is too short to say."""
    entries = [e for e in history.entries if e.grid == grid]
    base = {"customer_id": history.customer_id, "grid": grid, "as_of": as_of}
    for entry in reversed(entries):
        if entry.effective_at <= as_of:
            return SegmentAt(
                **base,
                segment=entry.to_segment,
                status="known",
                since=entry.effective_at,
                transition_id=entry.id,
                why=entry.why,
            )
    first_kept = entries[0] if entries else None
    if not history.trimmed or (first_kept is not None and first_kept.from_segment is None):
        return SegmentAt(**base, segment=None, status="not_yet")
    return SegmentAt(**base, segment=None, status="beyond_history")


def projected_at(
    recorded: SegmentAt, state: CustomerState, definitions: Definitions | None, as_of: datetime
) -> SegmentAt:
    """`recorded` (the history's answer) when `as_of` is not after the state's clock; else the state advanced
    to `as_of` with `definitions` decides (its last move in the grid, or no move: the segment at the clock),
    or the answer says the segment is unknown (`beyond_clock`) when `definitions` are not the state's."""
    clock = state.clock
    if clock is None or as_of <= clock:
        return recorded
    base = {"customer_id": recorded.customer_id, "grid": recorded.grid, "as_of": as_of}
    if definitions is None or definitions.version != state.definitions_version:
        return SegmentAt(**base, segment=None, status="beyond_clock")
    outcome = advance(state, as_of, definitions)
    moves = [t for t in outcome.transitions if t.grid == recorded.grid]
    if moves:
        last = moves[-1]
        return SegmentAt(
            **base,
            segment=last.to_segment,
            status="projected",
            since=last.effective_at,
            transition_id=last.id,
            why=dict(last.why),
        )
    grid, now = recorded.grid, outcome.state
    name = grid.removeprefix("audience:")
    segment = dict(now.audiences).get(name) if name != grid else getattr(now, f"seg_{grid}", None)
    kept = recorded.status == "known" and recorded.segment == segment
    return SegmentAt(
        **base,
        segment=segment or None,
        status="projected",
        since=recorded.since if kept else None,
        transition_id=recorded.transition_id if kept else None,
        why=recorded.why if kept else None,
    )


def history_of(customer_id: str, row: Mapping[str, str], definitions: Definitions | None) -> History:
    """The customer's history from its hash: the coded `history` field, each entry with its exact transition
    id, and the why of each current segment derived by the core from the state (`current_why`)."""
    blob = row.get(history_format.FIELD)
    kept, trimmed = history_format.decode(blob) if blob else ([], False)
    state = state_from_mapping(row)
    why = current_why(state, definitions) if definitions is not None else {}
    segments = readable_fields(state)  # every grid's segment, an audience's absent `not_member` included
    current: set[int] = set()  # the entries that put the customer in its current segments
    seen: set[str] = set()
    for n in range(len(kept) - 1, -1, -1):
        e = kept[n]
        if e.grid not in seen:
            seen.add(e.grid)
            if e.grid in why and e.to_segment == (segments.get(e.grid) or None):
                current.add(n)
    entries = [
        HistoryEntry(
            grid=e.grid,
            from_segment=e.from_segment,
            to_segment=e.to_segment,
            effective_at=e.effective_at,
            cause=e.cause,
            id=e.transition_id(customer_id),
            why=why[e.grid] if n in current else {},
        )
        for n, e in enumerate(kept)
    ]
    return History(customer_id=customer_id, entries=entries, trimmed=trimmed, why=why)
