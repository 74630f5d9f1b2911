"""A partition found rewound while the poll loop claims another one again is claimed again too.

Review finding (partition ownership): `Worker._take_again` takes the partitions of `retake`, awaiting each
`take` (end offsets, claim), then clears the whole set. Steps 4-7 of other partitions run meanwhile; one
whose commit finds Redis behind our claim (`_lose(..., "rewound")`) adds its partition to `retake` and pauses
it during that await, and the final `clear()` drops it: nothing claims it again, no `FencedStall` names it,
and it stays paused until the next rebalance. A Redis that went back in time (failover to a lagging replica,
a restore) rewinds every partition at once, so several commits find it rewound one after the other.

Forced here at the awaits, no timing: partition 1's commit is held until the claim made by `_take_again` for
partition 0 has begun, and that claim waits until partition 1 has been lost as rewound.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from typing import Literal

from aiokafka import TopicPartition

from segmentation import Definitions
from streams.store.port import Claim, CustomerWrite, InMemoryStateStore
from streams.worker.loop import Worker
from streams.worker.ownership import Owned
from tests.unit.test_worker_rebalance import (
    TOPIC,
    LogConsumer,
    expected_customers,
    log_of,
    settings,
    stored_customers,
)


class HeldStore(InMemoryStateStore):
    """Redis that can be restored from a snapshot; partition 1's commit waits for `release_commit` once
    `hold_commit` is set; the second claim of partition 0 (`_take_again`'s) opens it and waits for `lost`."""

    def __init__(self) -> None:
        super().__init__()
        self.saved: object = None
        self.hold_commit = False
        self.release_commit = asyncio.Event()
        self.lost = asyncio.Event()  # partition 1 was let go as rewound
        self.claims: dict[int, int] = {}

    def snapshot(self) -> None:
        self.saved = copy.deepcopy(self._partitions)

    def restore(self) -> None:
        self._partitions = copy.deepcopy(self.saved)  # type: ignore[arg-type]

    async def claim(self, partition: int) -> Claim:
        self.claims[partition] = self.claims.get(partition, 0) + 1
        if partition == 0 and self.claims[partition] == 2:  # `_take_again`, under the ownership lock
            self.release_commit.set()
            await self.lost.wait()
        return await super().claim(partition)

    async def commit(
        self, claim: Claim, offset: int | None, watermark_us: int | None, writes: Sequence[CustomerWrite]
    ) -> None:
        if claim.partition == 1 and self.hold_commit:
            await self.release_commit.wait()
        await super().commit(claim, offset, watermark_us, writes)


class Probe(Worker):
    """Tells the store when partition 1 was let go as rewound."""

    store: HeldStore

    def _lose(self, owned: Owned, outcome: Literal["fenced", "rewound"]) -> None:
        super()._lose(owned, outcome)
        if owned.claim.partition == 1 and outcome == "rewound":
            self.store.lost.set()


def test_a_partition_rewound_while_another_is_claimed_again_is_not_left_paused() -> None:
    log0, log1 = log_of(0, range(0, 40)), log_of(1, range(0, 30))

    async def scenario() -> tuple[HeldStore, LogConsumer, Probe, int]:
        store = HeldStore()
        consumer = LogConsumer({0: log0, 1: log1})
        worker = Probe(settings(), Definitions.default(), store, None, consumer)
        tp0, tp1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
        consumer.assign([tp0, tp1])
        await worker.listener().on_partitions_assigned([tp0, tp1])
        await worker.process(0, log0[:10])
        await worker.process(1, log1[:10])
        store.snapshot()  # what a lagging replica holds: both partitions up to offset 9
        await worker.process(0, log0[10:20])
        await worker.process(1, log1[10:20])
        store.hold_commit = True
        await worker.submit(1, log1[20:30])  # loaded and applied; its commit is in flight (held)
        assert worker.owned[1].inflight is not None
        store.restore()  # the failover: Redis lost every write after the snapshot, both partitions
        await worker.submit(0, log0[20:30])  # its load finds Redis behind our claim: rewound, retake {0}
        assert worker.retake == {0}

        run = asyncio.create_task(worker.run())
        while store._p(0).offset != 39:  # partition 0 is claimed again and caught up
            await asyncio.sleep(0.001)
        fetches = consumer.fetches
        while consumer.fetches < fetches + 50 and store._p(1).offset != 29:  # 50 more polls: all the
            await asyncio.sleep(0.001)  # chances the loop gets to claim partition 1 again
        worker.stop()
        await asyncio.wait_for(run, 10)
        return store, consumer, worker, store.claims.get(1, 0)

    store, consumer, worker, claims_of_1 = asyncio.run(scenario())
    assert stored_customers(store, 0) == expected_customers(log0)
    assert worker.metrics.retries["rewound"] == 2  # both partitions found Redis behind our claim
    # Before the fix: partition 1 is left paused, unowned, in neither `retake` nor `fenced_since`, and its
    # stored offset stays at 9 (offsets 10..29 never applied again) until a rebalance.
    assert claims_of_1 == 2, (
        f"partition 1 claimed {claims_of_1} time(s); paused={TopicPartition(TOPIC, 1) in consumer.paused}, "
        f"owned={1 in worker.owned}, retake={sorted(worker.retake)}, fenced={sorted(worker.fenced_since)}, "
        f"stored offset={store._p(1).offset}"
    )
    assert store._p(1).offset == 29
    assert stored_customers(store, 1) == expected_customers(log1)
