"""One poll batch of one partition, turned into state writes, transitions and dead letters.

Decode -> group by customer -> apply the pure core in log order -> diff against what is stored. No I/O here:
the worker loads states before and persists/publishes after, so this step can be retried freely.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Protocol

from segmentation import CustomerState, Definitions, InvalidEvent, advance, apply, parse_event
from segmentation.events import Event
from segmentation.instants import to_us
from segmentation.transition import Transition
from streams.store.indexes import IndexDelta
from streams.store.kpi_ops import KpiCounting
from streams.store.partitioning import partition_of_key
from streams.store.port import DEFAULT_HISTORY_SIZE, CustomerWrite
from streams.store.writes import Known, index_write, write_for
from streams.topics.deadletter import DeadLetter
from streams.worker.future_limit import FutureLimit

log = logging.getLogger("segstream.worker")


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
    @property
    def timestamp(self) -> int | None: ...


class Record(NamedTuple):
    """A Kafka record made by hand (file replay, tests). A tuple: a file replay makes one per line, and a
    frozen dataclass took ~1 µs to make, three times as long."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int | None = None  # ms since the epoch (a Kafka record's time); None: a file's line


@dataclass
class BatchResult:
    states: dict[str, Known] = field(default_factory=dict)
    writes: list[CustomerWrite] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    last_offset: int | None = None
    watermark_us: int | None = None
    events: int = 0
    duplicates: int = 0  # events already applied, or covered by the customer's erasure: no effect, counted
    index: IndexDelta = field(default_factory=IndexDelta)  # read-side deltas, committed with the writes


class WrongKey(ValueError):
    """The record's key is not its event's customer id, or the record is not in that id's partition: a
    customer's state lives in the partition of its id (`partition_for`), so applying it would make a second,
    unreadable state of that customer in the wrong partition."""


class TooFarInFuture(ValueError):
    """Event time further after its record's time than SEGSTREAM_MAX_FUTURE_SKEW_S (`future_limit`): applied,
    it would move the partition's stored watermark to that date (a replay sweeps by it; a live worker never
    past its wall clock: `catch_up.live_clock`)."""


def decode(
    records: Sequence[Incoming], limit: FutureLimit | None = None, partitions: int | None = None
) -> tuple[list[tuple[Incoming, Event]], list[DeadLetter]]:
    """Parse every record; a record that cannot be parsed, is not keyed by its customer id, is not in its
    customer's partition (of `partitions`, SEGSTREAM_TOPIC_PARTITIONS), or is dated after its `limit` (live
    mode, `replay --reject-future`: its record's time plus the allowed skew) is a dead letter."""
    events: list[tuple[Incoming, Event]] = []
    dead: list[DeadLetter] = []
    floor = None if limit is None else limit.floor(records)
    for rec in records:
        try:
            if rec.value is None:
                raise InvalidEvent("invalid event: empty record value (tombstone)")
            event = parse_event(rec.value)
            key = rec.key
            if key is None or key != event.customer_id.encode():
                raise WrongKey(_key_problem(key, event.customer_id))
            if partitions is not None and (home := partition_of_key(key, partitions)) != rec.partition:
                raise WrongKey(_partition_problem(rec.partition, home, partitions, event.customer_id))
            if floor is not None and event.occurred_at > floor and limit is not None:
                _check_future(event, rec, limit)
            events.append((rec, event))
        except (InvalidEvent, WrongKey, TooFarInFuture) as exc:
            dead.append(DeadLetter(rec.topic, rec.partition, rec.offset, rec.key, rec.value, exc, "parse"))
        except MemoryError:  # not the record's fault: dead-lettered, a valid event would never be applied
            raise
        except Exception as exc:  # a reader bug: one record must not stop its partition (and group) for ever
            log.error("decoding failed on %s:%s@%s", rec.topic, rec.partition, rec.offset, exc_info=exc)
            where = (rec.topic, rec.partition, rec.offset)
            dead.append(DeadLetter(*where, rec.key, rec.value, exc, "parse", unexpected=True))
    return events, dead


def _check_future(event: Event, rec: Incoming, limit: FutureLimit) -> None:
    not_after = limit.of(rec)
    if not_after is not None and event.occurred_at > not_after:
        raise TooFarInFuture(
            f"{event.type} occurred_at: {event.occurred_at.isoformat()} is after {not_after.isoformat()},"
            f" {limit.source(rec)} plus SEGSTREAM_MAX_FUTURE_SKEW_S"
        )


def _partition_problem(partition: int, home: int, partitions: int, customer_id: str) -> str:
    return (
        f"record in partition {partition}, but customer {customer_id!r} belongs to partition {home} of"
        f" {partitions} (SEGSTREAM_TOPIC_PARTITIONS): producers must use Kafka's default murmur2 partitioner"
        " of the key (librdkafka: partitioner=murmur2_random), and a topic's partitions must not change"
    )


def _key_problem(key: bytes | None, customer_id: str) -> str:
    why = "producers must key events by customer id (README, Events in)"
    if key is None:
        return f"record has no key; the event's customer_id is {customer_id!r}: {why}"
    shown = key[:128].decode("utf-8", "replace")
    return f"record key {shown!r} is not the event's customer_id {customer_id!r}: {why}"


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
    history_size: int = DEFAULT_HISTORY_SIZE,
    explain: bool = True,
) -> Generator[None, None, BatchResult]:
    """`apply_batch` as a generator that pauses every STEP events and returns the result: the worker
    resumes it from its event loop, so the previous batch's publish and commit are not held up for the
    whole of this batch's CPU work (pure: pausing changes nothing in the result). `explain=False` when the
    transitions are not published (their why is then empty: see `segmentation.evolution`)."""
    events, dead = decoded
    result = BatchResult(dead_letters=list(dead), events=len(records))
    result.index.history_size = history_size
    states: dict[str, CustomerState] = {}
    watermark: datetime | None = None
    origins: dict[str, Incoming] = {}  # customer -> record of the last event applied to it
    erasures: set[tuple[str, str]] = set()  # (customer, event id) of the erasures applied: they wipe history
    counting = KpiCounting(definitions, result.index, stored)
    for n, (rec, event) in enumerate(events, 1):
        if n % STEP == 0:
            yield
        cid = event.customer_id
        state = states.get(cid)
        if state is None:
            known = stored.get(cid)
            state = known[0] if known is not None else CustomerState.new(cid)
        try:
            outcome = apply(state, event, definitions, explain)
        except MemoryError:  # not the event's fault: dead-lettered, a valid event would never be applied
            raise
        except Exception as exc:  # any failure of the core for this event: dead-letter it, go on
            log.error("core failed on %s:%s@%s", rec.topic, rec.partition, rec.offset, exc_info=exc)
            result.dead_letters.append(
                DeadLetter(rec.topic, rec.partition, rec.offset, rec.key, rec.value, exc, "apply")
            )
            continue
        if outcome.state is state:  # `apply` hands a duplicate's state back as is (or one its erasure covers)
            result.duplicates += 1
        states[cid] = outcome.state
        origins[cid] = rec
        if state.first_seen_at is None and outcome.state.first_seen_at is not None:
            result.index.began(cid)  # a new lifetime: the next ordinal of the partition, in log order
        counting.step(state, outcome.state, outcome.transitions, event.event_id, event.type)
        if event.type == "customer_erased" and outcome.transitions:
            erasures.add((cid, event.event_id))
        if outcome.transitions:
            result.transitions.extend(outcome.transitions)
        if watermark is None or event.occurred_at > watermark:
            watermark = event.occurred_at
    if records:
        result.last_offset = records[-1].offset
    result.watermark_us = None if watermark is None else to_us(watermark)
    result.index.transitions(result.transitions, erasures)
    for cid, state in states.items():
        known = stored.get(cid)
        before, before_state = (known[1], known[0]) if known is not None else (None, None)
        origin = origins[cid]
        write, mapping = write_for(state, before, f"{origin.partition}:{origin.offset}", before_state)
        write = counting.finish(write, mapping)  # type: ignore[arg-type]
        result.writes.append(write)
        result.states[cid] = (state, mapping)
        index_write(result.index, write, before, mapping)
    result.dead_letters.sort(key=lambda d: d.offset)
    return result


def advance_all(
    states: Mapping[str, Known],
    until: datetime,
    definitions: Definitions,
    history_size: int = DEFAULT_HISTORY_SIZE,
    explain: bool = True,
) -> BatchResult:
    """Time-driven changes up to `until` for the given customers (the due sweep); `explain` as in
    `apply_steps`.

    Each customer is advanced to its own due instants, never to `until` itself: the sweep's clock depends on
    when the timer fired, and the stored state must depend only on the log (BRIEF 3.1). A state built under
    other definitions (lazy adoption) is first aligned at its own clock, so it is due when the worker's
    definitions say, not when its stored due time, set under the old ones, says (as `definitions apply`
    then a sweep would move it).
    """
    result = BatchResult()
    result.index.history_size = history_size
    moved: list[tuple[CustomerWrite, Mapping[str, str], Mapping[str, str]]] = []
    counting = KpiCounting(definitions, result.index, states)
    for cid, (state, mapping) in states.items():
        current = state
        if (state.definitions_version != definitions.version or state.seg_promotion is None) and state.clock:
            outcome = advance(current, state.clock, definitions, explain)  # aligned; no time passes
            result.transitions.extend(outcome.transitions)
            counting.step(current, outcome.state, outcome.transitions)
            current = outcome.state
        while current.next_due_at is not None and current.next_due_at <= until:
            due = current.next_due_at
            outcome = advance(current, due, definitions, explain)
            result.transitions.extend(outcome.transitions)
            counting.step(current, outcome.state, outcome.transitions)
            current = outcome.state
            if current.next_due_at is not None and current.next_due_at <= due:  # the core must move on
                raise RuntimeError(f"customer {cid}: next due {current.next_due_at} does not pass {due}")
        write, new_mapping = write_for(current, mapping, None, state)
        write = counting.finish(write, new_mapping)  # type: ignore[arg-type]
        result.states[cid] = (current, new_mapping)
        result.writes.append(write)
        moved.append((write, mapping, new_mapping))
    result.index.transitions(result.transitions)
    for write, before, after in moved:
        index_write(result.index, write, before, after)
    return result
