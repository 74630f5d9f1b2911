"""Following a promote while Kafka rebalances: aiokafka runs the rebalance listener from its coordinator task,
so it may fire while the worker re-claims its partitions in the promoted namespace. Neither may act on the
other's half-done view: the worker must end owning exactly what Kafka assigned, and must not fence out the
worker that now owns the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from segmentation import Definitions
from streams.settings import Settings
from streams.store.port import Claim, InMemoryStateStore
from streams.worker.loop import Worker
from streams.worker.namespace_follow import NamespaceFollow

TOPIC = Settings().events_topic


class Assignment:
    """The consumer calls the worker makes, with aiokafka's rule: an unassigned partition is an error."""

    def __init__(self, tps: Iterable[TopicPartition]) -> None:
        self.assigned = set(tps)
        self.asked: list[list[int]] = []  # the partitions of each end-offsets request

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def _check(self, tp: TopicPartition) -> None:
        if tp not in self.assigned:
            raise IllegalStateError(f"no current assignment for partition {tp}")

    def resume(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._check(tp)

    def pause(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._check(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._check(tp)

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._check(tp)

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked.append(sorted(tp.partition for tp in tps))
        return {tp: 0 for tp in tps}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        for tp in offsets:
            self._check(tp)

    def highwater(self, tp: TopicPartition) -> int | None:
        self._check(tp)
        return None


class SlowClaims(InMemoryStateStore):
    """A claim takes a few loop turns, like a Redis round trip; `before_claim` runs once at the first."""

    def __init__(self) -> None:
        super().__init__()
        self.before_claim: Callable[[], None] | None = None

    async def claim(self, partition: int) -> Claim:
        hook, self.before_claim = self.before_claim, None
        if hook is not None:
            hook()
        for _ in range(20):
            await asyncio.sleep(0)
        return await super().claim(partition)


def test_a_rebalance_during_a_namespace_switch_waits_for_it_and_fences_nobody() -> None:
    tps = [TopicPartition(TOPIC, p) for p in range(4)]

    async def scenario() -> tuple[Worker, dict[int, int], dict[int, int]]:
        old, new = SlowClaims(), SlowClaims()
        consumer = Assignment(tps)
        active = "old"

        async def read_active() -> str:
            return active

        async def built_with(name: str) -> str | None:
            return None

        async def record(name: str, version: str) -> None:
            return None

        follow = NamespaceFollow("old", read_active, lambda n: new if n == "new" else old, built_with, record)
        worker = Worker(Settings(), Definitions.default(), old, None, consumer, follow=follow)
        listener = worker.listener()
        await listener.on_partitions_assigned(set(tps))
        active = "new"
        others: dict[int, int] = {}

        async def rebalance() -> None:  # aiokafka's coordinator task, concurrent with the run loop
            await listener.on_partitions_revoked(set(tps))
            consumer.assigned = {tps[0], tps[1]}
            for p in (2, 3):  # the other worker, already in the new namespace, takes its share
                others[p] = (await InMemoryStateStore.claim(new, p)).fence
            await listener.on_partitions_assigned({tps[0], tps[1]})

        tasks: list[asyncio.Task[None]] = []
        new.before_claim = lambda: tasks.append(asyncio.get_running_loop().create_task(rebalance()))
        await worker.follow_promote()
        await asyncio.gather(*tasks)
        assert tasks, "the rebalance must have started during the switch"
        return worker, others, {p: new._p(p).fence for p in (2, 3)}

    worker, others, fences_now = asyncio.run(scenario())
    assert sorted(worker.owned) == [0, 1]
    assert fences_now == others, "the other worker's claims stand"


def test_following_a_promote_asks_the_end_offsets_once_for_every_partition() -> None:
    """As a new assignment: asked per partition after the first resumed, each question would wait for that
    partition's long-poll fetch (streams/worker/loop.py `take_all`)."""
    tps = [TopicPartition(TOPIC, p) for p in range(4)]
    old, new = InMemoryStateStore(), InMemoryStateStore()

    async def scenario() -> tuple[Worker, list[list[int]]]:
        consumer = Assignment(tps)
        active = "old"

        async def read_active() -> str:
            return active

        async def built_with(name: str) -> str | None:
            return None

        async def record(name: str, version: str) -> None:
            return None

        follow = NamespaceFollow("old", read_active, lambda n: new if n == "new" else old, built_with, record)
        worker = Worker(Settings(), Definitions.default(), old, None, consumer, follow=follow)
        await worker.listener().on_partitions_assigned(set(tps))
        consumer.asked.clear()
        active = "new"
        await worker.follow_promote()
        return worker, consumer.asked

    worker, asked = asyncio.run(scenario())
    assert asked == [[0, 1, 2, 3]]
    assert sorted(worker.owned) == [0, 1, 2, 3] and worker.store is new
