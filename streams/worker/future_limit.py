"""How far after its record an event may be dated: beyond it, a dead letter (`batch.TooFarInFuture`).

Why the record's time and not the moment a worker reads it: the decision must be a function of the log (BRIEF
3.1). Against the wall clock, an event dated two days after it was produced was a dead letter for a worker
that read it at once and applied by one that read it three days later (a backlog, a restart, a rebalance),
and a replay could not know which. A Kafka record carries its time (CreateTime, set by the producer, or
LogAppendTime, the broker's): the limit is that time plus `SEGSTREAM_MAX_FUTURE_SKEW_S`, whenever and by
whoever the record is read, so a live worker, a worker catching up and `segstream replay kafka:TOPIC
--reject-future` decide alike. A record time later than the reader's clock (a producer's clock ahead; Kafka 4
refuses CreateTime more than an hour ahead by default, `message.timestamp.after.max.ms`) is not trusted: the
reader's clock is used instead. A record without a time (a line of a file) is held to the reader's clock,
fixed once per replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from segmentation.instants import after, to_us
from streams.store.writes import from_us

if TYPE_CHECKING:
    from streams.settings import Settings


class Timed(Protocol):
    """A record with its time: aiokafka's ConsumerRecord (ms since the epoch; -1 when it has none), a
    `Record` (None for a file's line). 0 counts as none: no producer stamps the epoch on purpose."""

    @property
    def timestamp(self) -> int | None: ...


@dataclass(frozen=True)
class FutureLimit:
    """`now`: the reader's clock (a live worker's, once per batch; a replay's start); `skew`: how far after
    its record an event may be dated.

    Record times are compared as integers before any date is made of them: a CreateTime that no calendar
    holds (year 10000 and later: Kafka before 4 accepts any) must be a time not trusted, never an error that
    stops the worker at the same record after every restart."""

    now: datetime
    skew: timedelta
    clock: str = "the reader's clock"  # what `now` is, for the dead letter's message
    now_ms: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "now_ms", to_us(self.now) // 1000)

    def _trusted(self, ms: int | None) -> int | None:
        """The record's time in ms when it has one at or before `now`; None otherwise (0 and below: none)."""
        if ms is None or ms <= 0 or ms > self.now_ms:
            return None
        return ms

    def reference(self, record: Timed) -> datetime:
        """The record's time, or `now` when it has none or claims to be later than it."""
        ms = self._trusted(record.timestamp)
        return self.now if ms is None else from_us(ms * 1000)

    def of(self, record: Timed) -> datetime | None:
        """The latest event time `record` may carry (None: beyond the calendar, so no limit)."""
        return after(self.reference(record), self.skew)

    def floor(self, records: Sequence[Timed]) -> datetime | None:
        """A bound no record of `records` has a lower limit than: an event dated at or before it passes
        without working out its own record's limit (nearly all of them). None: no limit at all."""
        # a time later than `now` (or none) is held to `now`: the lowest reference is min(now, the earliest)
        times = (ms for r in records if (ms := r.timestamp) is not None and ms > 0)
        earliest = min(times, default=self.now_ms)
        return after(self.now if earliest >= self.now_ms else from_us(earliest * 1000), self.skew)

    def source(self, record: Timed) -> str:
        """What the limit was worked out from, for the dead letter's message."""
        ms = record.timestamp
        if ms is None or ms <= 0:
            return f"{self.clock} (the record has no time)"
        if self._trusted(ms) is None:
            return f"{self.clock} (the record's time is later)"
        return "the record's time"


def worker_limit(settings: Settings, now: datetime) -> FutureLimit | None:
    """A live worker's limit; a replay-mode worker applies the log whatever its dates (BRIEF 3.1)."""
    if settings.mode != "live":
        return None
    return FutureLimit(now, timedelta(seconds=settings.max_future_skew_s), "this worker's clock")
