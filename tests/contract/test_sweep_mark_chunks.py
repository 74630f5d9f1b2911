"""The sweep mark over a sweep of several chunks (SEGSTREAM_SWEEP_MAX_CUSTOMERS): marked once before the first
chunk's publication, cleared by the last chunk's commit, and kept by an owner killed at any chunk, or while it
pays an earlier owner's mark, so the next claim still makes the moves it finds published (`sweep_mark`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

from aiokafka import TopicPartition

from segmentation import Definitions
from segmentation.instants import to_us
from streams.settings import Settings
from streams.store.metrics_hash import running_values, running_workers
from streams.store.port import InMemoryStateStore
from streams.worker.batch import BatchResult
from streams.worker.mode_guard import applied_settings
from streams.worker.ownership import Owned
from tests.contract.test_sweep_mark import FIRST, WALL, Consumer, Killed, Publishing, _purchase
from tests.unit.seg_helpers import home_ids

IDS = home_ids("x", 0, 3)  # three chunks of one customer each
TP = TopicPartition("events", 0)


class Chunked(Publishing):
    """Killed at its `die_at`-th commit of a sweep's states (0: never); counts the marks it commits."""

    states_commits = 0
    marks = 0
    die_at = 0

    async def _commit(
        self, owned: Owned, result: BatchResult, offset: int | None, watermark: int | None
    ) -> bool:
        if result.writes and offset is None:
            self.states_commits += 1
            if self.states_commits == self.die_at:
                raise Killed
        elif not result.writes and result.index.swept_us is not None and result.index.swept_us > 0:
            self.marks += 1
        return await super()._commit(owned, result, offset, watermark)


def _worker(store: InMemoryStateStore, die_at: int = 0, days: int = 0) -> Chunked:
    settings = Settings(mode="live", sweep_max_customers=1)
    wall = WALL + timedelta(days)
    worker = Chunked(settings, Definitions.default(), store, object(), Consumer(), lambda: wall)
    worker.published, worker.die_at = [], die_at
    return worker


async def _bought_and_swept(store: InMemoryStateStore, die_at: int) -> Chunked:
    worker = _worker(store, die_at)
    await worker.own(0)
    await worker.process(0, [_purchase(i, FIRST, cid) for i, cid in enumerate(IDS)])
    with contextlib.suppress(Killed):
        await worker.sweep(force=True)
    return worker


def test_a_sweep_of_three_chunks_marks_once_and_its_last_commit_clears_it() -> None:
    async def scenario() -> tuple[int, int, int | None]:
        store = InMemoryStateStore()
        worker = await _bought_and_swept(store, 0)
        return worker.marks, worker.states_commits, (await store.claim(0)).swept_us

    assert asyncio.run(scenario()) == (1, 3, None)


def test_an_owner_killed_at_its_second_chunk_leaves_the_mark() -> None:
    async def scenario() -> int | None:
        store = InMemoryStateStore()
        await _bought_and_swept(store, 2)
        return (await store.claim(0)).swept_us

    assert asyncio.run(scenario()) == to_us(WALL)


def test_a_payer_killed_mid_payment_leaves_the_mark_for_the_next_claim() -> None:
    """A claim pays the mark in chunks too, and clears it only once all it owes is committed: cleared by its
    first chunk, the moves its killed second chunk published would be nobody's to make again."""

    async def scenario() -> tuple[int | None, int | None, int]:
        store = InMemoryStateStore()
        await _bought_and_swept(store, 2)  # chunk 1 committed, chunk 2 published, killed
        payer = _worker(store, die_at=2, days=1)
        await payer.take(TP)
        with contextlib.suppress(Killed):
            await payer.sweep(force=True)  # pays the mark: its chunk 1 commits, its chunk 2 is killed
        mid = (await store.claim(0)).swept_us
        third = _worker(store, days=1)
        await third.take(TP)
        await third.sweep(force=True)
        return mid, (await store.claim(0)).swept_us, len(third.published)

    mid, end, published = asyncio.run(scenario())
    assert mid == to_us(WALL)
    assert end is None and published > 0


def test_a_long_sweep_keeps_the_worker_seen_running() -> None:
    """A sweep (or an adoption walk paid at a claim) holds the poll loop, and with it the worker's reports:
    past 15 s, `drop`, `replay --force` and `definitions apply` took a live worker for a stopped one (final
    review, 7 December 2026). Its chunks refresh the worker's `updated_at` (at most every second)."""

    async def scenario() -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
        store = InMemoryStateStore()
        worker = _worker(store)
        await worker.own(0)
        await worker.process(0, [_purchase(i, FIRST, cid) for i, cid in enumerate(IDS)])
        store.metrics.clear()  # the batch's own report
        await worker.sweep(force=True)
        now = time.time()
        return (
            running_workers(store.metrics, now),
            running_values(store.metrics, now, "mode"),
            running_values(store.metrics, now, "applies"),
        )

    running, modes, applies = asyncio.run(scenario())
    assert len(running) == 1
    # and states its mode and settings, which a first sweep before any report did not: a worker of another
    # mode started beside it was let in (`mode_guard`; review of 7 December 2026)
    assert list(modes.values()) == ["live"]
    assert list(applies.values()) == [applied_settings(Settings(mode="live", sweep_max_customers=1))]
