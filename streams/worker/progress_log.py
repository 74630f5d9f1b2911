"""What a running worker tells its operator: a progress line every SEGSTREAM_PROGRESS_INTERVAL_S and, once per
set of owned partitions, "caught up" when it has applied what they held when it took them.

Read off counters the pipeline keeps anyway (`Metrics`, per batch) and the lags the partitions' last reports
measured (`progress_report`), on the poll loop's timer: nothing is added per event, so the hot path measured
by benchmarks/bench_worker.py pays nothing for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from streams.store.counters import Metrics
from streams.worker.ownership import Owned

log = logging.getLogger("segstream.worker")
CHECK_EVERY_S = 1.0
"""How often the poll loop looks at the timer and the caught-up state (a clock read per loop otherwise)."""


def total_lag(owned: Mapping[int, Owned]) -> int | None:
    """Events behind the high watermark, summed over the owned partitions as their last report (at most a
    second old, `progress_report.partition_lag`) measured them (None: not known yet)."""
    lags = [held.lag for held in owned.values() if held.lag is not None]
    return sum(lags) if lags else None


def span(partitions: frozenset[int]) -> str:
    """`0-3` for a run, `0,2,5` otherwise: short enough for a log line whatever the count."""
    ordered = sorted(partitions)
    if len(ordered) > 2 and ordered[-1] - ordered[0] == len(ordered) - 1:
        return f"{ordered[0]}-{ordered[-1]}"
    return ",".join(map(str, ordered))


@dataclass
class ProgressLog:
    """The figures at the last progress line, and which partition set was last announced caught up."""

    interval_s: float  # 0: no progress lines (the caught-up line stays)
    metrics: Metrics
    clock: Callable[[], float] = time.monotonic
    next_check: float = 0.0
    announced: frozenset[int] = frozenset()
    last: tuple[float, int, int, int] = field(default=(0.0, 0, 0, 0))  # time, events, transitions, dead

    def __post_init__(self) -> None:
        m = self.metrics
        self.last = (self.clock(), m.events, m.transitions, m.dead_letters)

    async def tick(
        self,
        owned: Mapping[int, Owned],
        caught_up: Callable[[int, Owned], Awaitable[bool]],
        lag: Callable[[], int | None],
    ) -> None:
        """Called once per poll loop; does something at most every CHECK_EVERY_S."""
        now = self.clock()
        if now < self.next_check:
            return
        self.next_check = now + CHECK_EVERY_S
        await self._caught_up(owned, caught_up)
        if self.interval_s > 0 and now - self.last[0] >= self.interval_s:
            log.info("%s", self.line(now, lag(), len(owned)))

    async def _caught_up(
        self, owned: Mapping[int, Owned], caught_up: Callable[[int, Owned], Awaitable[bool]]
    ) -> None:
        """Announce a partition set once all of it is caught up; a set that only lost partitions (a
        rebalance gave some away) has nothing new to announce."""
        partitions = frozenset(owned)
        if partitions == self.announced:
            return
        if not partitions - self.announced:
            self.announced = partitions
            return
        for partition, held in list(owned.items()):
            if not await caught_up(partition, held):
                return
        self.announced = partitions
        log.info(
            "caught up: partition%s %s applied what %s held at start (%d events since the worker started)",
            "s" if len(partitions) > 1 else "",
            span(partitions),
            "they" if len(partitions) > 1 else "it",
            self.metrics.events,
        )

    def stopped(self) -> None:
        """The last lifecycle line of a graceful stop: everything in flight was committed."""
        m = self.metrics
        log.info(
            "stopped: %d events, %d transitions, %d dead letters since the worker started; all committed",
            m.events,
            m.transitions,
            m.dead_letters,
        )

    def line(self, now: float, lag: int | None, partitions: int) -> str:
        """Rates and counts since the previous line; resets the reference point."""
        m = self.metrics
        at, events, transitions, dead = self.last
        self.last = (now, m.events, m.transitions, m.dead_letters)
        seconds = max(now - at, 1e-9)
        lag_text = "unknown" if lag is None else f"{lag}"
        return (
            f"progress: {(m.events - events) / seconds:.0f} events/s, lag {lag_text} over {partitions} "
            f"partition{'' if partitions == 1 else 's'}, {m.transitions - transitions} transitions, "
            f"{m.dead_letters - dead} dead letters in the last {seconds:.0f} s"
        )
