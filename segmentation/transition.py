"""Transitions: the facts marketing automation reacts to, one per (customer, grid) segment change.

The id is derived from what the transition *is* (customer, grid, from, to, effective time, cause; for a
definitions change, also the definitions version), so a recomputation or a replay yields the same id and
consumers can deduplicate redeliveries.
`cause` is the id of the event that caused it, `time` for a change due to time passing, or
`definitions` for a change due to new definitions. `why` carries the rule and the values that decided; it is
`NO_WHY` (empty) when the caller asked the core not to explain (`explain=False`: a replay that publishes no
transition, where nothing would read it); the id never depends on it. Such a transition's id is `NO_ID`
(empty) too: only a publication reads it (a history entry keeps what recomputes it), and hashing it cost as
much as the why on an import (~9 % of a replay's CPU).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

from segmentation.instants import iso
from segmentation.state import CustomerState

__all__ = [
    "CAUSE_DEFINITIONS", "CAUSE_TIME", "ERASURE_RULE", "NO_ID", "NO_WHY", "Outcome", "Transition", "id_cause",
    "new_transition", "outcome_of", "transition_id", "transition_key",
]  # fmt: skip

CAUSE_TIME = "time"
CAUSE_DEFINITIONS = "definitions"
NO_WHY: Mapping[str, str] = MappingProxyType({})  # the why of a transition applied with explain=False
NO_ID = ""  # and its id
# the `rule` of an erasure's exits (X -> None): how a reader of the topic tells an erasure from a grid that
# left the definitions (streams/read/changes.py)
ERASURE_RULE = "customer erased"


def id_cause(cause: str, definitions_version: str | None, change: int = 0) -> str:
    """The cause as hashed into the id. A definitions change names its version and, from the customer's
    second change on, its number (`change`, the state's `definitions_changes`): applying v2, back to v1,
    then v2 again moves a dormant customer (whose clock did not move) the same way at the same instant
    twice, and the second move must not look like a redelivery of the first. A first change keeps the id it
    had before changes were numbered."""
    if cause == CAUSE_DEFINITIONS and definitions_version is not None:
        return f"{cause}@{definitions_version}" if change <= 1 else f"{cause}@{definitions_version}#{change}"
    return cause


def transition_id(
    customer_id: str,
    grid: str,
    from_segment: str | None,
    to_segment: str | None,
    effective_at: datetime,
    cause: str,
    definitions_version: str | None = None,
    definitions_change: int = 0,
) -> str:
    """First 32 hex digits of SHA-256 over the fields, NUL-separated (no field can fake a separator).

    `definitions_version` and `definitions_change` count only for cause `definitions` (see `id_cause`);
    None gives the id such transitions had before versions counted."""
    key_cause = id_cause(cause, definitions_version, definitions_change)
    return transition_key(customer_id, grid, from_segment, to_segment, iso(effective_at), key_cause)


def transition_key(
    customer_id: str,
    grid: str,
    from_segment: str | None,
    to_segment: str | None,
    effective_text: str,
    cause: str,
) -> str:
    """`transition_id` with the instant already as `iso` text (one formatting for all of an event's) and
    the cause already as `id_cause` gives it."""
    parts = (customer_id, grid, from_segment or "", to_segment or "", effective_text, cause)
    return _sha256("\x00".join(parts).encode()).hexdigest()[:32]


_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True, init=False)
class Transition:
    """A change of segment in one grid for one customer at an event-time instant."""

    id: str
    customer_id: str
    grid: str
    from_segment: str | None
    to_segment: str | None
    effective_at: datetime
    cause: str
    definitions_version: str
    why: Mapping[str, str] = field(hash=False)
    # cause `definitions`: which of the customer's definitions changes made it (its state's
    # `definitions_changes`, in the id from the second on: `id_cause`); 0 for any other cause
    definitions_change: int = 0

    def __init__(
        self,
        id: str,
        customer_id: str,
        grid: str,
        from_segment: str | None,
        to_segment: str | None,
        effective_at: datetime,
        cause: str,
        definitions_version: str,
        why: Mapping[str, str],
        definitions_change: int = 0,
    ) -> None:
        """The dataclass's own, written out: mypyc compiles this one (each `object.__setattr__` becomes a
        slot store), while the generated `__init__` ran interpreted, ~1.2 µs a transition (0.04 now)."""
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "customer_id", customer_id)
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "from_segment", from_segment)
        object.__setattr__(self, "to_segment", to_segment)
        object.__setattr__(self, "effective_at", effective_at)
        object.__setattr__(self, "cause", cause)
        object.__setattr__(self, "definitions_version", definitions_version)
        object.__setattr__(self, "why", why)
        object.__setattr__(self, "definitions_change", definitions_change)

    @classmethod
    def create(
        cls,
        customer_id: str,
        grid: str,
        from_segment: str | None,
        to_segment: str | None,
        effective_at: datetime,
        cause: str,
        definitions_version: str,
        why: Mapping[str, str],
        definitions_change: int = 0,
    ) -> Transition:
        """Build a transition with its deterministic id and a read-only `why`."""
        return cls(
            transition_id(
                customer_id,
                grid,
                from_segment,
                to_segment,
                effective_at,
                cause,
                definitions_version,
                definitions_change,
            ),
            customer_id,
            grid,
            from_segment,
            to_segment,
            effective_at,
            cause,
            definitions_version,
            MappingProxyType(why if isinstance(why, dict) else dict(why)),
            definitions_change,
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (times as canonical ISO 8601 strings). A definitions change also carries its
        number (`definitions_change`), which its id hashes from the second on: without it a consumer could
        not recompute that id."""
        out: dict[str, object] = {
            "id": self.id,
            "customer_id": self.customer_id,
            "grid": self.grid,
            "from_segment": self.from_segment,
            "to_segment": self.to_segment,
            "effective_at": iso(self.effective_at),
            "cause": self.cause,
            "definitions_version": self.definitions_version,
            "why": dict(self.why),
        }
        if self.cause == CAUSE_DEFINITIONS:
            out["definitions_change"] = self.definitions_change
        return out


def _slot_setters() -> tuple[Callable[[Transition, object], None], ...]:
    return tuple(getattr(Transition, f.name).__set__ for f in fields(Transition))


(_ID, _CUSTOMER, _GRID, _FROM, _TO, _AT, _CAUSE, _VERSION, _WHY, _CHANGE) = _slot_setters()
_new = object.__new__


def _filled(
    key: str,
    customer_id: str,
    grid: str,
    from_segment: str | None,
    to_segment: str | None,
    effective_at: datetime,
    cause: str,
    definitions_version: str,
    why: Mapping[str, str],
    definitions_change: int = 0,
) -> Transition:
    """`Transition(...)` for the hot path: fills the slots directly (the frozen dataclass `__init__`
    goes through `object.__setattr__` per field, ~0.3 µs more per transition). Same object, same
    equality and hash; valid because `Transition` has no `__post_init__` (a test checks it).
    """
    t: Transition = _new(Transition)
    _ID(t, key)
    _CUSTOMER(t, customer_id)
    _GRID(t, grid)
    _FROM(t, from_segment)
    _TO(t, to_segment)
    _AT(t, effective_at)
    _CAUSE(t, cause)
    _VERSION(t, definitions_version)
    _WHY(t, why)
    _CHANGE(t, definitions_change)
    return t


# Compiled by mypyc (docs/benchmarks.md, "Compiled core"), `Transition` is a native class: `object.__new__`
# refuses it, and its own constructor is then the fast one.
_NATIVE = hasattr(Transition, "__mypyc_attrs__")
new_transition: Callable[
    [str, str, str, str | None, str | None, datetime, str, str, Mapping[str, str], int], Transition
] = Transition if _NATIVE else _filled


class Outcome(NamedTuple):
    """The new state and the transitions, in the order they happened, that led to it.

    Immutable (a NamedTuple: built once per event, so its construction cost matters).
    """

    state: CustomerState
    transitions: tuple[Transition, ...] = ()


def outcome_of(state: CustomerState, transitions: tuple[Transition, ...] = ()) -> Outcome:
    """`Outcome(state, transitions)` in one C call (a NamedTuple's `__new__` is a Python function).

    `apply` returns one per event, so the ~0.15 µs saved counts.
    """
    return _tuple_new(Outcome, (state, transitions))


_tuple_new: Callable[[type[Outcome], tuple[CustomerState, tuple[Transition, ...]]], Outcome] = tuple.__new__
