"""One poll batch of one partition, turned into state writes, transitions and dead letters.

Decode -> group by customer -> apply the pure core in log order -> diff against what is stored. No I/O here:
the worker loads states before and persists/publishes after, so this step can be retried freely.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from segmentation import CustomerState, Definitions, InvalidEvent, advance, apply, parse_event
from segmentation.events import Event
from segmentation.state_mapping import changed_fields
from segmentation.transition import Transition
from streams.deadletter import DeadLetter
from streams.indexes import IndexDelta
from streams.store import CustomerWrite

log = logging.getLogger("segstream.worker")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Incoming(Protocol):
    """What the worker needs of a Kafka record: aiokafka's ConsumerRecord as it comes (copying ~2,000 of
    them per poll into our own type cost ~0.4 CPU-us per event), or a `Record` (replay, tests)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record made by hand (file replay, tests)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


Known = tuple[CustomerState, Mapping[str, str]]
"""A customer's state with the mapping last written for it, so a batch serialises each state only once."""


class Written(dict[str, str]):
    """A mapping `write_for` made: exactly `state_to_mapping` of the state it was written with, so the next
    write of that customer can encode only the fields that changed (`changed_fields`) instead of all ~70.
    A row read from Redis is a plain dict (it may hold storage or stale fields) and is diffed in full."""

    __slots__ = ()


@dataclass
class BatchResult:
    states: dict[str, Known] = field(default_factory=dict)
    writes: list[CustomerWrite] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    last_offset: int | None = None
    watermark_us: int | None = None
    events: int = 0
    index: IndexDelta = field(default_factory=IndexDelta)  # read-side deltas, committed with the writes


def to_us(moment: datetime) -> int:
    """Epoch microseconds, exact (no float), for Redis scores and watermarks."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    from datetime import timedelta

    return EPOCH + timedelta(microseconds=us)


def decode(records: Sequence[Incoming]) -> tuple[list[tuple[Incoming, Event]], list[DeadLetter]]:
    events: list[tuple[Incoming, Event]] = []
    dead: list[DeadLetter] = []
    for rec in records:
        try:
            if rec.value is None:
                raise InvalidEvent("invalid event: empty record value (tombstone)")
            events.append((rec, parse_event(rec.value)))
        except InvalidEvent as exc:
            dead.append(DeadLetter(rec.topic, rec.partition, rec.offset, rec.key, rec.value, exc, "parse"))
    return events, dead


def customers_of(events: Sequence[tuple[Incoming, Event]]) -> list[str]:
    return list(dict.fromkeys(ev.customer_id for _, ev in events))


def apply_batch(
    records: Sequence[Incoming],
    decoded: tuple[list[tuple[Incoming, Event]], list[DeadLetter]],
    stored: Mapping[str, Known],
    definitions: Definitions,
) -> BatchResult:
    """Apply every decoded event to its customer's state, in log order; an event the core rejects is a
    dead letter and leaves the state as it was (nothing is skipped silently)."""
    steps = apply_steps(records, decoded, stored, definitions)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


STEP = 128
"""Events applied between two pauses of `apply_steps` (~2 ms), where the worker lets I/O progress."""


def apply_steps(
    records: Sequence[Incoming],
    decoded: tuple[list[tuple[Incoming, Event]], list[DeadLetter]],
    stored: Mapping[str, Known],
    definitions: Definitions,
) -> Generator[None, None, BatchResult]:
    """`apply_batch` as a generator that pauses every STEP events and returns the result: the worker
    resumes it from its event loop, so the previous batch's publish and commit are not held up for the
    whole of this batch's CPU work (pure: pausing changes nothing in the result)."""
    events, dead = decoded
    result = BatchResult(dead_letters=list(dead), events=len(records))
    states: dict[str, CustomerState] = {}
    watermark: datetime | None = None
    origins: dict[str, Incoming] = {}  # customer -> record of the last event applied to it
    for n, (rec, event) in enumerate(events, 1):
        if n % STEP == 0:
            yield
        cid = event.customer_id
        state = states.get(cid)
        if state is None:
            known = stored.get(cid)
            state = known[0] if known is not None else CustomerState.new(cid)
        try:
            outcome = apply(state, event, definitions)
        except Exception as exc:  # any failure of the core for this event: dead-letter it, go on
            log.error("core failed on %s:%s@%s", rec.topic, rec.partition, rec.offset, exc_info=exc)
            result.dead_letters.append(
                DeadLetter(rec.topic, rec.partition, rec.offset, rec.key, rec.value, exc, "apply")
            )
            continue
        states[cid] = outcome.state
        origins[cid] = rec
        if outcome.transitions:
            result.transitions.extend(outcome.transitions)
        if watermark is None or event.occurred_at > watermark:
            watermark = event.occurred_at
    if records:
        result.last_offset = records[-1].offset
    result.watermark_us = None if watermark is None else to_us(watermark)
    result.index.transitions(result.transitions)
    for cid, state in states.items():
        known = stored.get(cid)
        before, before_state = (known[1], known[0]) if known is not None else (None, None)
        origin = origins[cid]
        write, mapping = write_for(state, before, f"{origin.partition}:{origin.offset}", before_state)
        result.writes.append(write)
        result.states[cid] = (state, mapping)
        index_write(result.index, write, before, mapping)
    result.dead_letters.sort(key=lambda d: d.offset)
    return result


def advance_all(states: Mapping[str, Known], until: datetime, definitions: Definitions) -> BatchResult:
    """Time-driven changes up to `until` for the given customers (the due sweep).

    Each customer is advanced to its own due instants, never to `until` itself: the sweep's clock depends on
    when the timer fired, and the stored state must depend only on the log (BRIEF 3.1).
    """
    result = BatchResult()
    moved: list[tuple[CustomerWrite, Mapping[str, str], Mapping[str, str]]] = []
    for cid, (state, mapping) in states.items():
        current = state
        while current.next_due_at is not None and current.next_due_at <= until:
            due = current.next_due_at
            outcome = advance(current, due, definitions)
            result.transitions.extend(outcome.transitions)
            current = outcome.state
            if current.next_due_at is not None and current.next_due_at <= due:  # the core must move on
                raise RuntimeError(f"customer {cid}: next due {current.next_due_at} does not pass {due}")
        write, new_mapping = write_for(current, mapping, None, state)
        result.states[cid] = (current, new_mapping)
        result.writes.append(write)
        moved.append((write, mapping, new_mapping))
    result.index.transitions(result.transitions)
    for write, before, after in moved:
        index_write(result.index, write, before, after)
    return result


def index_write(
    index: IndexDelta, write: CustomerWrite, before: Mapping[str, str] | None, after: Mapping[str, str]
) -> None:
    """The read-side deltas of one customer write (membership, KPIs; an erasure wipes the history)."""
    if write.delete:
        index.erased(write.customer_id)
        if before:
            index.customer(write.customer_id, before, {})
        return
    index.customer(write.customer_id, before, after, (*write.set_fields, *write.removed_fields))


def write_for(
    state: CustomerState,
    before: Mapping[str, str] | None,
    origin: str | None = None,
    before_state: CustomerState | None = None,
) -> tuple[CustomerWrite, Mapping[str, str]]:
    """Only the fields that changed go to Redis; an erased (blank) customer is deleted.

    `before_state` is the state `before` was made from: when `before` is a `Written` mapping, only the
    fields whose value differs are encoded (the same changes as a diff of full mappings, proven in
    tests/unit/test_state_mapping_delta.py); otherwise the whole state is serialised and diffed."""
    if state.first_seen_at is None:
        return CustomerWrite(state.customer_id, delete=True), {}
    if before_state is not None and isinstance(before, Written):
        changed, removed = changed_fields(before_state, state)
        new = Written(before)
        new.update(changed)
        for key in removed:
            del new[key]
    else:
        new = Written(state.to_mapping())
        old = before or {}
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        removed = [k for k in old if k not in new and not k.startswith("_")]
    if origin is not None:
        changed["_offset"] = origin
    due = state.next_due_at  # the core caches next_due() in the state
    return CustomerWrite(state.customer_id, changed, removed, due_us=None if due is None else to_us(due)), new
