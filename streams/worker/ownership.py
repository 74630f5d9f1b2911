"""What a worker holds for a partition it owns: the fence, the progress, and the states it need not reload."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition

from streams.store.port import Claim
from streams.store.writes import Known


@dataclass
class Owned:
    """A partition this worker owns (its claim fences out earlier owners) and how far it got."""

    claim: Claim
    offset: int | None
    watermark_us: int | None
    cache: OrderedDict[str, Known] = field(default_factory=OrderedDict)
    next_sweep: float = 0.0
    # Steps 4-7 of the last batch prepared (see `Worker.submit`), still running while the next batch is
    # prepared, and that batch's new states, which are the truth for the next batch until they are cached.
    inflight: asyncio.Task[None] | None = None
    inflight_states: dict[str, Known] = field(default_factory=dict)
    prepared: int | None = None  # last offset handed to steps 4-7 (>= offset)
    next_report: float = 0.0  # monotonic time of the next Kafka offset commit and metrics publication
    reported: int | None = None  # offset last committed to Kafka
    lag: int | None = None  # events behind the high watermark at the last report (`progress_report`)
    catch_up_to: int | None = None  # last offset in the partition when taken; None once applied (or none)
    end_unknown: bool = False  # Kafka did not say the partition's end when taken: not caught up until it does
    end_asked: float = 0.0  # monotonic time the end was last asked again (`catch_up._learn_end`)
    gap: tuple[int, int] | None = None  # (expected, first offset seen) of a batch refused as out of order
    released: bool = False  # revoked: no batch may start its steps 4-7 any more (`Rebalance._let_go`)
    realign: AsyncIterator[str] | None = None  # the walk a lazy adoption asks for (`worker/realign.py`)
    realign_for: str = ""  # that adoption (`definitions_record.REALIGN`), recorded done once walked
    marked_us: int | None = None  # the sweep clock last committed as the meta's `sweeping` (`sweep_mark`)
    owed_us: int | None = None  # the `sweeping` its claim read: swept to before its first batch (`pay_owed`)
    paying: bool = False  # paying `owed_us`: its chunks leave the mark for `sweep_mark.paid` to clear
    taking: bool = False  # `Worker.take` has claimed it and not resumed it yet: the poll loop leaves it alone

    def caught_up(self) -> bool:
        """Applied everything the partition held when it was taken. Until then a live worker sweeps by event
        time, like a replay: moving customers on by the wall clock first would turn the backlog's events
        into late events and publish time-driven moves a continuous run never makes."""
        if self.end_unknown:
            return False
        if self.catch_up_to is not None and self.offset is not None and self.offset >= self.catch_up_to:
            self.catch_up_to = None
        return self.catch_up_to is None

    def held(self, customer_ids: Iterable[str]) -> dict[str, Known]:
        """The states of these customers that need no Redis read: in flight first, then cached."""
        cache, inflight = self.cache, self.inflight_states
        return {
            cid: inflight[cid] if cid in inflight else cache[cid]
            for cid in customer_ids
            if cid in inflight or cid in cache
        }

    def remember(self, states: Mapping[str, Known], limit: int) -> None:
        """Cache committed states, least recently used out first; an erased customer is forgotten."""
        cache = self.cache
        for cid, known in states.items():
            if known[0].first_seen_at is None:
                cache.pop(cid, None)
                continue
            cache[cid] = known
            cache.move_to_end(cid)
        while len(cache) > limit:
            cache.popitem(last=False)


class Holder(Protocol):
    """The part of the worker a rebalance touches."""

    owned: dict[int, Owned]
    ownership: asyncio.Lock  # held while `owned` changes: rebalances and namespace switches never interleave
    # between a rebalance's revoke and assign callbacks: the consumer's assignment is stale (aiokafka keeps
    # the revoked partitions in it until the group's answer, and replaces it before the assign callback runs)
    reassigning: bool
    # what a rebalance callback raised: aiokafka only logs it, so the poll loop raises it (`Worker.heartbeat`)
    listener_failure: Exception | None

    async def report(self, partition: int, owned: Owned) -> None: ...

    async def take_all(self, tps: Sequence[TopicPartition]) -> None: ...

    def hold(self, tps: Iterable[TopicPartition]) -> None: ...


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Revoked: finish the batch in flight, report, forget. Assigned: claim and seek to Redis's offset."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self.holder.ownership:
            try:
                await self._let_go(revoked)
            except Exception as exc:  # see `on_partitions_assigned`
                self.holder.listener_failure = self.holder.listener_failure or exc
            self.holder.reassigning = True

    async def _let_go(self, revoked: Iterable[TopicPartition]) -> None:
        holder = self.holder
        for tp in revoked:
            owned = holder.owned.get(tp.partition)
            if owned is not None:
                # Let the batch in flight finish (a failure is raised by the main loop). A batch prepared
                # behind it would start when it settles, so nothing may start from now on; and the wait
                # goes on while a batch is in flight, whichever woke first.
                owned.released = True
                while owned.inflight is not None and not owned.inflight.done():
                    await asyncio.wait({owned.inflight})
            if owned is not None and holder.owned.get(tp.partition) is owned:
                await holder.report(tp.partition, owned)
            holder.owned.pop(tp.partition, None)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = list(assigned)
        self.holder.hold(assigned)  # before any await: nothing is fetched for them until `take` seeks
        async with self.holder.ownership:
            self.holder.reassigning = False
            try:
                await self.holder.take_all(assigned)
            except Exception as exc:
                # aiokafka only logs what a listener raises: a claim Redis refused (over maxmemory, say) left
                # its partition paused and unclaimed while the worker ran on applying nothing, without a word.
                # Kept for the poll loop, which stops the worker with it, as a refused commit does.
                self.holder.listener_failure = self.holder.listener_failure or exc
