"""The worker's progress and "caught up" lines: figures since the previous line, one announcement per new
partition set, nothing when the interval is 0 (the integration test runs them on a real worker)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streams.store.counters import Metrics
from streams.store.port import Claim
from streams.worker.ownership import Owned
from streams.worker.progress_log import ProgressLog, span


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def owned(*partitions: int) -> dict[int, Owned]:
    return {p: Owned(Claim(p, 1, 9, None), 9, None) for p in partitions}


def run(log: ProgressLog, held: dict[int, Owned], done: set[int], lag: int | None = 7) -> None:
    async def caught_up(partition: int, _: Owned) -> bool:
        return partition in done

    asyncio.run(log.tick(held, caught_up, lambda: lag))


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    out = [r.getMessage() for r in caplog.records if r.name == "segstream.worker"]
    caplog.clear()
    return out


def test_progress_line_gives_rates_and_counts_since_the_previous_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "segstream.worker")
    clock, metrics = Clock(), Metrics()
    metrics.batch(50, 1, 1, 0.1)  # before the log started: not counted
    log = ProgressLog(10.0, metrics, clock)
    held = owned(0, 1)
    clock.now += 5
    run(log, held, set())
    assert messages(caplog) == []  # neither caught up nor an interval old
    metrics.batch(1000, 30, 2, 0.1)
    clock.now += 5
    run(log, held, set())
    assert messages(caplog) == [
        "progress: 100 events/s, lag 7 over 2 partitions, 30 transitions, 2 dead letters in the last 10 s"
    ]
    metrics.swept(5, 4)
    clock.now += 20
    run(log, held, set(), lag=None)
    assert messages(caplog) == [
        "progress: 0 events/s, lag unknown over 2 partitions, 4 transitions, 0 dead letters in the last 20 s"
    ]


def test_caught_up_once_per_new_partition_set(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "segstream.worker")
    clock, metrics = Clock(), Metrics()
    log = ProgressLog(0.0, metrics, clock)  # 0: no progress lines
    run(log, owned(0, 1, 2, 3), {0, 1, 2})
    assert messages(caplog) == []  # partition 3 still has its backlog
    metrics.batch(120, 0, 0, 0.1)
    clock.now += 1
    run(log, owned(0, 1, 2, 3), {0, 1, 2, 3})
    assert messages(caplog) == [
        "caught up: partitions 0-3 applied what they held at start (120 events since the worker started)"
    ]
    for _ in range(3):
        clock.now += 100
        run(log, owned(0, 1, 2, 3), {0, 1, 2, 3})
    assert messages(caplog) == []  # said once; no progress lines at interval 0
    clock.now += 1
    run(log, owned(0, 2), {0, 2})  # a rebalance took some away: nothing new to announce
    assert messages(caplog) == []
    clock.now += 1
    run(log, owned(0, 2, 5), {0, 2, 5})  # a new partition taken and applied
    assert messages(caplog) == [
        "caught up: partitions 0,2,5 applied what they held at start (120 events since the worker started)"
    ]


def test_span_is_short() -> None:
    assert span(frozenset({0, 1, 2, 3})) == "0-3"
    assert span(frozenset({1, 0})) == "0,1"
    assert span(frozenset({4})) == "4"
    assert span(frozenset({0, 2, 5})) == "0,2,5"
