"""A live worker sweeps by the wall clock only once the backlog it took is applied; the backlog may end with
offsets never delivered (transaction markers, compaction), so having fetched past it counts too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition

from segmentation import Definitions
from streams.settings import Settings
from streams.store.port import InMemoryStateStore
from streams.worker.loop import Worker
from tests.unit.test_worker_follow import TOPIC, Assignment
from tests.unit.test_worker_pipeline import CUSTOMERS, records

FAR_LATER = datetime(2030, 1, 1, tzinfo=UTC)


class Backlog(Assignment):
    """Offsets 0..2 at take time: offset 0 an event, 1 and 2 transaction markers; fetched up to `position`."""

    def __init__(self, position: int) -> None:
        super().__init__([TopicPartition(TOPIC, 0)])
        self.fetched = position

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 3 for tp in tps}

    async def position(self, tp: TopicPartition) -> int:
        return self.fetched


@pytest.mark.parametrize(("position", "lifecycle"), [(1, "new"), (3, "lost")])
def test_the_wall_clock_moves_customers_only_after_the_backlog(position: int, lifecycle: str) -> None:
    async def scenario() -> dict[str, str]:
        store = InMemoryStateStore()
        worker = Worker(
            Settings(mode="live"), Definitions.default(), store, None, Backlog(position), lambda: FAR_LATER
        )
        await worker.take(TopicPartition(TOPIC, 0))
        await worker.process(0, records(0, 1))  # a customer buys at offset 0; markers 1-2 never delivered
        await worker.sweep(force=True)
        return (await store.load(0, [CUSTOMERS[0]]))[CUSTOMERS[0]]

    assert asyncio.run(scenario())["lifecycle"] == lifecycle
