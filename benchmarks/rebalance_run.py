"""Rebalance cost under a steady load: a worker joins, leaves gracefully, joins again, is killed.

The load is produced at a fixed rate from a thread of its own; the applied offsets in Redis are sampled every
SAMPLE_S and each trigger is watched until the group is Stable with the expected members and the lag has
been back to normal for `hold_s` (benchmarks/rebalance_timeline.py reads the cost off the samples).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from benchmarks.rebalance_timeline import Cost, Sample, cost, settled, threshold
from benchmarks.worker_group import Group, group_state
from streams.bootstrap import keyspace, producer
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.redis_store import applied_events, applied_per_partition

__all__ = ["TRIGGERS", "rebalance"]

SAMPLE_S = 0.05
TRIGGERS = ("join", "leave", "rejoin", "kill")


class SteadyLoad(threading.Thread):
    """Produces `records` at `rate` events/s in its own event loop; `produced` counts acked events."""

    def __init__(
        self, settings: Settings, rate: float, records: Iterator[tuple[bytes | None, bytes]]
    ) -> None:
        super().__init__(daemon=True)
        self.settings, self.rate, self.records = settings, rate, records
        self.produced = 0
        self.exhausted = False
        self._halt = threading.Event()

    def run(self) -> None:
        asyncio.run(self._produce())

    def halt(self) -> None:
        self._halt.set()
        self.join(30)

    async def _produce(self) -> None:
        prod = producer(self.settings)
        await prod.start()
        try:
            start = time.monotonic()
            while not self._halt.is_set():
                due = int((time.monotonic() - start) * self.rate)
                batch = list(itertools.islice(self.records, max(0, due - self.produced)))
                self.exhausted = self.exhausted or len(batch) < due - self.produced
                sends = [await prod.send(self.settings.events_topic, v, key=k) for k, v in batch]
                await asyncio.gather(*sends)
                self.produced += len(batch)
                await asyncio.sleep(0.01)
        finally:
            await prod.stop()


def steady_records(rate: float, seconds: float) -> Iterator[tuple[bytes | None, bytes]]:
    """Engagement events dated after the measured backlog, with ids of their own (seed 12): new work."""
    spec = sample.SampleSpec(
        customers=max(1, int(rate * seconds / 100)),
        days=365,
        seed=12,
        start=datetime(2027, 1, 1, tzinfo=UTC),
        malformed_share=0.002,
    )
    return sample.keyed(spec)


@dataclass
class Settling:
    """Stop rule of one trigger: the group is Stable with the expected members, then the lag stays normal
    for `hold_s` (rebalance_timeline.settled); or `timeout_s` passed."""

    settings: Settings
    members: int
    samples: list[Sample]
    t0: float
    limit: float
    hold_s: float
    timeout_s: float
    stable_at: float | None = None
    next_check: float = 0.0

    def done(self) -> bool:
        now = time.monotonic()
        if now - self.t0 > self.timeout_s:
            print(f"    not settled {self.timeout_s:.0f}s after the trigger")
            return True
        if self.stable_at is None and now >= self.next_check:
            self.next_check = now + 0.5
            state, count = asyncio.run(group_state(self.settings))
            if state == "Stable" and count == self.members:
                self.stable_at = now
        return self.stable_at is not None and settled(self.samples, self.stable_at, self.limit, self.hold_s)


def rebalance(
    group: Group,
    client: redis.Redis,
    rate: float,
    hold_s: float,
    timeout_s: float,
    triggers: tuple[str, ...] = TRIGGERS,
) -> dict[str, Cost]:
    """Join, graceful leave, join, kill under a steady load; the cost of each (rebalance_timeline)."""
    settings = group.settings
    keys, partitions = keyspace(settings), settings.topic_partitions
    backlog = applied_events(client, keys, partitions)
    load = SteadyLoad(settings, rate, steady_records(rate, 2 * timeout_s * (len(TRIGGERS) + 1)))
    samples: list[Sample] = []

    def observe(until: Callable[[], bool]) -> None:
        while not until():
            samples.append(
                Sample(
                    time.monotonic(), backlog + load.produced, applied_per_partition(client, keys, partitions)
                )
            )
            time.sleep(SAMPLE_S)

    actions: dict[str, Callable[[], object]] = {
        "join": group.spawn,
        "leave": lambda: group.alive()[0].terminate(),  # an original member, SIGTERM: graceful stop
        "rejoin": group.spawn,
        "kill": lambda: group.alive()[0].kill(),  # SIGKILL: the group learns it at the session timeout
    }
    costs: dict[str, Cost] = {}
    load.start()
    try:
        warm = time.monotonic()
        observe(lambda: time.monotonic() - warm > hold_s)
        for name in triggers:
            joins = name in ("join", "rejoin")
            if not joins and len(group.alive()) <= 1:
                print(f"    {name}: skipped, it would leave no worker")
                continue
            members = len(group.alive()) + (1 if joins else -1)
            t0 = time.monotonic()
            limit = threshold(samples, t0, rate)
            actions[name]()
            observe(Settling(settings, members, samples, t0, limit, hold_s, timeout_s).done)
            costs[name] = c = cost([s for s in samples if s.at >= t0 - 3.0], t0, rate)
            print(
                f"    {name:10} group pause {c.group_pause:5.2f}s, "
                f"partition pause {c.partition_pause:5.2f}s, "
                f"lag back to normal after {c.recovery:5.2f}s (lag before {c.lag_before:,.0f}, "
                f"peak {c.peak_lag:,})",
                flush=True,
            )
    finally:
        load.halt()
    expected = backlog + load.produced
    deadline = time.monotonic() + timeout_s
    while (now_applied := applied_events(client, keys, partitions)) < expected:
        if time.monotonic() > deadline:  # a rebalance that loses progress for good would show here
            raise SystemExit(
                f"stalled: {now_applied:,} of {expected:,} events applied {timeout_s:.0f}s after the load"
            )
        time.sleep(SAMPLE_S)
    print(f"    drained: all {expected:,} events applied after the triggers", flush=True)
    if load.exhausted:
        print("    the steady load's sample ran out: later figures saw no load")
    return costs
