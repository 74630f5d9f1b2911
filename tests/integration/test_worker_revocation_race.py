"""A revocation that lands while a batch commits, and a reply of our earlier claim handed back late: no batch
of the old claim may start after the revocation, and no late reply may make a later commit look like a
retry (the script answers 'DUP' to a sequence it has seen, and the worker takes that as written).

Forced interleavings (hooks at the awaits, no load), found in review on 6 December 2026: before the fix, the
batch prepared behind the one in flight started its commit once that one settled, after the revocation had
returned; its reply, handed back after this worker claimed the partition again, set the store's commit
sequence back, so the new claim's second batch was answered 'DUP' and never written (5 events of 25 lost).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from segmentation import Definitions
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite, Rewound
from streams.store.redis_store import RedisStateStore
from streams.worker.loop import Worker
from tests.services import Services
from tests.unit.test_worker_rebalance import TOPIC, LogConsumer, customer_ids, log_of, settings


def test_a_batch_prepared_behind_the_one_in_flight_is_dropped_by_a_revocation(
    services: Services, redis_prefix: str
) -> None:
    """Batch N commits (held), batch N+1 waits for it, the partition is revoked: once N settles, N+1 must not
    start; the next claim resumes right after N and every event is applied once."""
    ks = KeySpace(redis_prefix.rstrip(":"), "ns", TOPIC)

    async def body() -> tuple[int, int | None, int]:
        r = async_client(services.redis_url)
        store = RedisStateStore(r, ks)
        tp = TopicPartition(TOPIC, 0)
        log = log_of(0, range(25), 25)  # one customer per event: a lost batch shows in the orders
        consumer = LogConsumer({0: log})
        consumer.assign([tp])
        worker = Worker(settings(), Definitions.default(), store, None, consumer)
        try:
            release_n, in_settle = asyncio.Event(), asyncio.Event()
            commits: list[str] = []  # the fence of each commit sent
            original_commit, original_settle = store._commit, worker._settle

            async def hooked_commit(keys: Any, args: Any) -> Any:
                commits.append(str(args[0]).split(":")[0])
                if len(commits) == 1:  # batch N: held before it is sent
                    await release_n.wait()
                return await original_commit(keys=keys, args=args)

            async def settle(owned: Any) -> None:
                if owned.inflight is not None and not owned.inflight.done():
                    in_settle.set()
                await original_settle(owned)

            store._commit = hooked_commit  # type: ignore[assignment]
            worker._settle = settle  # type: ignore[method-assign]
            await worker.listener().on_partitions_assigned([tp])
            old = worker.owned[0]
            await worker.submit(0, log[0:5], old)  # N in flight, its commit held
            n_plus_1 = asyncio.create_task(worker.submit(0, log[5:10], old))
            await in_settle.wait()  # N+1 applied, waiting for N
            revoke = asyncio.create_task(worker.listener().on_partitions_revoked([tp]))
            for _ in range(3):
                await asyncio.sleep(0)  # the revocation waits for N
            release_n.set()
            await revoke
            await n_plus_1
            await asyncio.sleep(0.2)  # a commit started now would be sent by then
            sent_by_old_claim = len(commits)
            consumer.assign([tp])
            await worker.listener().on_partitions_assigned([tp])  # this worker again, from Redis's offset
            claim = worker.owned[0].claim
            await worker.process(0, log[claim.offset + 1 if claim.offset is not None else 0 :])
            await worker.drain()
            offset, _ = await store.read_meta(0)
            rows = await store.load(0, customer_ids(0, 25))
            return sent_by_old_claim, offset, sum(int(row["orders"]) for row in rows.values())
        finally:
            await r.aclose()

    sent_by_old_claim, offset, orders = asyncio.run(body())
    assert sent_by_old_claim == 1  # N only: N+1 was dropped, not started after the revocation
    assert (offset, orders) == (24, 25)


def test_a_late_reply_of_an_earlier_claim_does_not_turn_the_next_commit_into_a_retry(
    services: Services, redis_prefix: str
) -> None:
    """A commit lands under our claim 1 and its reply comes back only after we claimed the partition again
    and committed under claim 2: the commit after that must still be written."""
    ks = KeySpace(redis_prefix.rstrip(":"), "ns", "events")

    async def body() -> tuple[dict[Any, Any], int | None]:
        r = async_client(services.redis_url)
        store = RedisStateStore(r, ks)
        try:
            landed, hand_back = asyncio.Event(), asyncio.Event()
            original = store._commit
            held = True

            async def late(keys: Any, args: Any) -> Any:
                reply = await original(keys=keys, args=args)
                if held:
                    landed.set()
                    await hand_back.wait()
                return reply

            store._commit = late  # type: ignore[assignment]
            first = await store.claim(0)
            old = asyncio.create_task(store.commit(first, 0, None, [CustomerWrite("a", {"x": "1"})]))
            await landed.wait()  # in Redis, its reply not handled yet
            held = False
            second = await store.claim(0)
            await store.commit(second, 1, None, [CustomerWrite("b", {"x": "1"})])
            hand_back.set()
            await old
            await store.commit(second, 2, None, [CustomerWrite("c", {"x": "1"})])
            offset, _ = await store.read_meta(0)
            return await r.hgetall(ks.customer(0, "c")), offset
        finally:
            await r.aclose()

    row, offset = asyncio.run(body())
    assert (row, offset) == ({b"x": b"1"}, 2)


def test_a_commit_whose_sequence_went_back_is_refused_not_taken_for_a_retry(
    services: Services, redis_prefix: str
) -> None:
    """Whatever moves a client's commit sequence back, the script tells a retry (the last commit's sequence,
    its offset already applied) from new changes (an offset beyond, or an older sequence): those are refused
    as REWOUND, so the worker claims again and resumes from Redis's offset, where 'DUP' would have dropped
    them unwritten."""
    ks = KeySpace(redis_prefix.rstrip(":"), "ns", "events")

    async def body() -> tuple[dict[Any, Any], dict[Any, Any], int | None]:
        r = async_client(services.redis_url)
        store = RedisStateStore(r, ks)
        try:
            claim = await store.claim(0)
            await store.commit(claim, 4, None, [CustomerWrite("a", {"x": "1"})])
            await store.commit(claim, 9, None, [CustomerWrite("b", {"x": "1"})])
            store._next_seq[0] = 2  # the sequence gone back (as a late reply once did)
            await store.commit(claim, 9, None, [CustomerWrite("b", {"x": "2"})])  # a retry: 'DUP'
            store._next_seq[0] = 2
            with pytest.raises(Rewound, match="REWOUND commit 2 with offset 14"):
                await store.commit(claim, 14, None, [CustomerWrite("c", {"x": "1"})])
            store._next_seq[0] = 1  # an older sequence is no retry, even without an offset (a sweep's)
            with pytest.raises(Rewound, match="REWOUND commit 1 with offset none after commit 2"):
                await store.commit(claim, None, None, [CustomerWrite("c", {"x": "2"})])
            offset, _ = await store.read_meta(0)
            return await r.hgetall(ks.customer(0, "b")), await r.hgetall(ks.customer(0, "c")), offset
        finally:
            await r.aclose()

    b, c, offset = asyncio.run(body())
    assert (b, c, offset) == ({b"x": b"1"}, {}, 9)
