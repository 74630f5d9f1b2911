"""The ownership lock does not freeze the consumer's assignment: it is stale between a rebalance's callbacks.

Review finding (partition ownership). aiokafka runs `on_partitions_revoked`, then re-joins the group
(JoinGroup, SyncGroup: as long as the slowest member takes to re-join), then replaces the assignment
(`assign_from_subscribed`) and only then runs `on_partitions_assigned`. Between the two callbacks
`consumer.assignment()` still lists every revoked partition (measured on the local broker: the old four
partitions for ~9 ms after the revoke callback returned, then the new two before the assign callback ran),
and nothing holds the ownership lock. `follow_promote` (since 5381f74: "every assigned partition") and
`_take_again` read `consumer.assignment()` under the lock, then claim each partition across awaits (end
offsets, claim). Started in that window they claim partitions already revoked from this worker; when the join
completes during their awaits, (a) a claim sent after the new owner's fences that owner out of the
partition Kafka gave it (its commits are refused, it pauses it, and `FencedStall` stops it after
`fenced_grace_s`), and (b) `take`'s `consumer.seek` on a partition no longer assigned raises
IllegalStateError out of `run()`: the worker itself dies.

Forced with hooks at the claim, as aiokafka orders it: the revoke callback has returned, the assignment is
still the old one when the worker reads it, and the join completes while the first claim awaits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import TopicPartition

from segmentation import Definitions
from streams.settings import Settings
from streams.store.port import Claim, InMemoryStateStore
from streams.worker.loop import Worker
from streams.worker.namespace_follow import NamespaceFollow
from tests.unit.test_worker_follow import TOPIC, Assignment

TPS = [TopicPartition(TOPIC, p) for p in range(4)]


class HookedClaims(InMemoryStateStore):
    """A claim takes a few loop turns, like a Redis round trip; `before_claim` runs once, at the first."""

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


def join_completes(
    worker: Worker, consumer: Assignment, store: InMemoryStateStore, others: dict[int, int]
) -> Callable[[], None]:
    """The rest of aiokafka's rebalance, from the moment the JoinGroup answer arrives: the assignment is
    replaced (0 and 1 stay ours), the other worker claims 2 and 3, then our assign callback runs."""

    async def rest() -> None:
        consumer.assigned = {TPS[0], TPS[1]}  # `assign_from_subscribed`, before the listener
        for p in (2, 3):  # the other worker's `on_partitions_assigned`, which nothing of ours holds up
            others[p] = (await InMemoryStateStore.claim(store, p)).fence
        await worker.listener().on_partitions_assigned({TPS[0], TPS[1]})

    tasks: list[asyncio.Task[None]] = []

    def start() -> None:
        tasks.append(asyncio.get_running_loop().create_task(rest()))

    start.tasks = tasks  # type: ignore[attr-defined]
    return start


def test_a_promote_followed_between_a_rebalances_callbacks_fences_nobody_and_does_not_crash() -> None:
    async def scenario() -> tuple[Worker, BaseException | None, dict[int, int], dict[int, int]]:
        old, new = HookedClaims(), HookedClaims()
        consumer = Assignment(TPS)
        active = "old"

        async def read_active() -> str:
            return active

        async def built_with(name: str) -> str | None:
            return None

        async def record(name: str, version: str) -> None:
            return None

        follow = NamespaceFollow("old", read_active, lambda n: new if n == "new" else old, built_with, record)
        worker = Worker(Settings(), Definitions.default(), old, None, consumer, follow=follow)
        await worker.listener().on_partitions_assigned(set(TPS))
        # A rebalance starts: aiokafka's coordinator runs the revoke callback, then sends JoinGroup. The
        # assignment stays the old one until the SyncGroup answer (aiokafka `begin_reassignment` only flags).
        await worker.listener().on_partitions_revoked(set(TPS))
        assert worker.owned == {} and consumer.assignment() == set(TPS)
        active = "new"  # `segstream promote` ran meanwhile; the poll loop notices it now
        others: dict[int, int] = {}
        hook = join_completes(worker, consumer, new, others)
        new.before_claim = hook  # the join completes while the first claim in the new namespace awaits
        failure: BaseException | None = None
        try:
            await worker.follow_promote()
        except Exception as exc:  # what `run()` would raise: the worker process exits
            failure = exc
        if not hook.tasks:  # type: ignore[attr-defined]  # it claimed nothing: the join completes now
            hook()
        await asyncio.gather(*hook.tasks)  # type: ignore[attr-defined]
        return worker, failure, others, {p: new._p(p).fence for p in (2, 3)}

    worker, failure, others, fences_now = asyncio.run(scenario())
    # before the fix: IllegalStateError (the worker dies), and partition 2's fence is one past the other
    # worker's claim (it is fenced out of a partition Kafka gave it)
    assert (type(failure).__name__, fences_now) == ("NoneType", others), f"follow_promote raised {failure!r}"
    assert sorted(worker.owned) == [0, 1]


def test_a_retake_between_a_rebalances_callbacks_fences_nobody_and_does_not_crash() -> None:
    async def scenario() -> tuple[Worker, BaseException | None, dict[int, int], dict[int, int]]:
        store = HookedClaims()
        consumer = Assignment(TPS)
        worker = Worker(Settings(), Definitions.default(), store, None, consumer)
        await worker.listener().on_partitions_assigned(set(TPS))
        # partition 2 found Redis behind our claim (`_lose(..., "rewound")`): to be claimed again
        worker._lose(worker.owned[2], "rewound")
        assert worker.retake == {2}
        await worker.listener().on_partitions_revoked(set(TPS))  # a rebalance starts (see above)
        others: dict[int, int] = {}
        hook = join_completes(worker, consumer, store, others)
        store.before_claim = hook  # the join completes while `_take_again`'s claim awaits
        failure: BaseException | None = None
        try:
            await worker._take_again()
        except Exception as exc:  # what `run()` would raise: the worker process exits
            failure = exc
        if not hook.tasks:  # type: ignore[attr-defined]  # it claimed nothing: the join completes now
            hook()
        await asyncio.gather(*hook.tasks)  # type: ignore[attr-defined]
        return worker, failure, others, {p: store._p(p).fence for p in (2, 3)}

    worker, failure, others, fences_now = asyncio.run(scenario())
    # before the fix: IllegalStateError (the worker dies), and partition 2's fence is one past the other
    # worker's claim (it is fenced out of a partition Kafka gave it)
    assert (type(failure).__name__, fences_now) == ("NoneType", others), f"_take_again raised {failure!r}"
    assert sorted(worker.owned) == [0, 1]
