"""A worker that slept through losing its partition publishes nothing from its stale states.

Found by the chaos suite (`rolling_restarts`, SIGSTOP longer than the session timeout): the woken worker
still believed it owned the partition, applied work to its cached states, which a newer owner had moved on,
and published transitions no replay has before its commit was refused by the fence. Publishing must precede
the commit (no lost transition), so the check has to come before applying. Forced here without timing: the
newer owner's batches run while the old worker is simply not scheduled.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from segmentation import Definitions
from streams.settings import Settings
from streams.store.port import InMemoryStateStore
from streams.worker.batch import BatchResult
from streams.worker.loop import Worker
from tests.unit.test_worker_rebalance import T0, log_of, stored_customers


class Recording(Worker):
    """Keeps the ids of the transitions it publishes (there is no producer here)."""

    def __init__(self, store: InMemoryStateStore, clock: datetime) -> None:
        settings = Settings(mode="live", batch_max_ms=1, sweep_interval_ms=10_000)
        super().__init__(settings, Definitions.default(), store, None, None, wall_clock=lambda: clock)
        self.published: list[str] = []

    async def _publish(self, result: BatchResult) -> None:
        self.published += [t.id for t in result.transitions]
        await super()._publish(result)


def test_a_worker_fenced_out_while_asleep_publishes_nothing_from_its_stale_states() -> None:
    log = log_of(0, range(0, 40), customers=4)
    months_later = T0 + timedelta(days=400)  # every customer is due for time-driven changes by then

    async def scenario() -> tuple[Recording, int, Recording, bool]:
        store = InMemoryStateStore()
        old = Recording(store, months_later)
        await old.own(0)
        await old.process(0, log[:20])  # cached: the four customers as of offset 19
        asleep = len(old.published)
        new = Recording(store, months_later)
        await new.own(0)  # the group moved the partition while the old worker slept
        await new.process(0, log[20:])  # the four customers bought again: their due times moved
        before = stored_customers(store, 0)
        await old.sweep(force=True)  # wakes up: a sweep would advance its stale states
        await old.process(0, log[20:30])  # and a redelivered batch would start from them
        unchanged = stored_customers(store, 0) == before
        await new.sweep(force=True)
        return old, asleep, new, unchanged

    old, asleep, new, unchanged = asyncio.run(scenario())
    assert new.published, "the scenario must make the newer owner publish time-driven changes"
    assert old.published[asleep:] == []  # before: transitions of its stale states, absent from any replay
    assert unchanged
    assert 0 not in old.owned  # it knows it lost the partition
    assert old.metrics.retries["fenced"] == 1
