"""A worker still running the OLD definitions after `definitions apply --force`, or after an apply that
stopped half way, must not move the namespace's customers back to them.

README: "with `--force` a worker it fences pauses the partition and logs an error until it is assigned
again", and docs/replay.md: a worker running another version "refuses to write into it ... because it
would move that namespace's customers back to its own definitions". The version check runs at start-up and
on a promote only; a partition Kafka assigns again (`Worker.take`, from the rebalance listener) is claimed
with no check. The fenced-out worker, still holding the old definitions, then writes into the namespace
that records the new ones and re-segments customers back, with `definitions` transitions of the OLD version.

Forced deterministically: the worker applies two events, `definitions.apply` runs (as `--force` does), the
worker's next batch is refused (fenced), then Kafka assigns the partition again (`take`, what
`Rebalance.on_partitions_assigned` calls) and the next event arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from segmentation import Definitions
from segmentation.transition import Transition
from streams.admin import definitions_change as change
from streams.bootstrap import check_definitions, definitions_record
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.redis_store import RedisStateStore
from streams.store.stored_state import stored_state
from streams.worker.batch import BatchResult, Record
from streams.worker.loop import Worker
from streams.worker.namespace_follow import DefinitionsMismatch
from tests.integration.worker_harness import make_settings
from tests.services import Services
from tests.unit.seg_helpers import definitions_with, home_ids

LIFECYCLE_NEW = {
    "new_for_days": 10,
    "at_risk_after_days": 90,
    "lost_after_days": 180,
    "reactivated_for_days": 30,
}


def _record(topic: str, n: int, kind: str, day: int, **fields: Any) -> Record:
    body = {"event_id": f"e{n}", "type": kind, "customer_id": "c1", "schema_version": 1}
    body |= {"occurred_at": f"2026-01-{day:02d}T00:00:00+00:00", **fields}
    return Record(topic, 0, n, b"c1", orjson.dumps(body))


class _Consumer:
    """What `Worker.take` asks of the consumer once the end offsets are known: seek, resume, pause."""

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought = offset

    def resume(self, *tps: TopicPartition) -> None:
        pass

    def pause(self, *tps: TopicPartition) -> None:
        pass

    def assignment(self) -> set[TopicPartition]:
        return set()

    async def commit(self, offsets: Any) -> None:  # Kafka's offsets: lag monitoring only
        pass


def test_a_fenced_out_worker_with_the_old_definitions_does_not_move_customers_back_when_reassigned(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1, namespace="ns")
    old = Definitions.default()
    new = definitions_with(lifecycle=LIFECYCLE_NEW, version="v-new")
    topic = settings.events_topic
    buy = {"order_id": "o1", "amount": "40.00", "currency": "EUR", "channel": "web"}

    async def scenario() -> tuple[str | None, list[Transition], list[Transition], str | None]:
        client = async_client(settings.redis_url)
        keys = KeySpace(settings.key_prefix, "ns", topic)
        store = RedisStateStore(client, keys)
        published: list[Transition] = []
        try:
            await check_definitions(settings, client, old.version)  # the worker's start: records `old`
            worker = Worker(settings, old, store, None, _Consumer())
            worker.recorded = definitions_record(settings, client)  # as `worker_runtime` wires it

            async def keep(result: BatchResult) -> None:
                published.extend(result.transitions)

            worker._publish = keep  # type: ignore[method-assign]
            tp = TopicPartition(topic, 0)
            await worker.take(tp, {tp: 10})
            await worker.process(
                0, [_record(topic, 0, "purchase", 1, **buy), _record(topic, 1, "web_visit", 20)]
            )

            # `definitions apply --force`: every customer re-segmented under `new`, the new version recorded
            applied: list[Transition] = []

            async def send(transitions: list[Transition]) -> None:
                applied.extend(transitions)

            await change.apply(client, keys, 1, new, send, definitions_yaml="(new)")
            # the worker's next batch is refused (fenced out), the partition paused ...
            await worker.process(0, [_record(topic, 2, "web_visit", 21)])
            assert 0 not in worker.owned, "fenced out by the apply's claim"
            published.clear()
            # ... until Kafka assigns it again (a rebalance: another worker of the group restarted, say)
            await worker.take(tp, {tp: 10})  # refused: the partition stays paused, unclaimed
            await worker.process(0, [_record(topic, 2, "web_visit", 21)])
            assert 0 not in worker.owned
            with pytest.raises(DefinitionsMismatch, match="built with definitions 'v-new'"):
                await worker.heartbeat()  # the refusal stops the worker (exit 3), as at start-up
            state = stored_state(await _row(client, keys, 0, "c1"), "ns")
            recorded = await change.moving_from(client, keys)  # the recorded version, the apply done
            return state.definitions_version, applied, published, recorded
        finally:
            await client.aclose()

    stored_version, applied, published, recorded = asyncio.run(scenario())
    assert [(t.grid, t.from_segment, t.to_segment) for t in applied] == [("lifecycle", "new", "active")]
    assert recorded == "v-new"
    back = [(t.grid, t.from_segment, t.to_segment, t.cause, t.definitions_version) for t in published]
    assert stored_version == "v-new", (
        f"customer c1 re-segmented back to {stored_version!r} by a worker running the old definitions "
        f"in a namespace recording 'v-new'; transitions it published: {back}"
    )
    assert not [t for t in published if t.definitions_version != "v-new"], back


def test_an_apply_that_stopped_half_way_leaves_no_opening_for_a_worker_with_the_old_definitions(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """`definitions apply` stops between partitions (Kafka gone at partition 1's publish): partition 0's
    customers are at the new version. Before, the namespace still recorded the old one (written only at the
    end), so a worker restarted with the old file was accepted and moved partition 0's customers back as
    their events arrived (and the rerun of apply forward again: new->old->new, none of it in a replay). Now
    the restart is refused, a worker with the new file accepted, and a rerun still logs the old version."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2, namespace="ns")
    old = Definitions.default()
    new = definitions_with(lifecycle=LIFECYCLE_NEW, version="v-new")
    topic = settings.events_topic
    (c0,), (c1,) = home_ids("k", 0, 1, 2), home_ids("k", 1, 1, 2)

    def record(cid: str, partition: int, n: int, kind: str, day: int, **fields: Any) -> Record:
        body = {"event_id": f"{cid}-e{n}", "type": kind, "customer_id": cid, "schema_version": 1}
        body |= {"occurred_at": f"2026-01-{day:02d}T00:00:00+00:00", **fields}
        return Record(topic, partition, n, cid.encode(), orjson.dumps(body))

    buy = {"order_id": "o", "amount": "40.00", "currency": "EUR", "channel": "web"}

    async def scenario() -> tuple[str | None, str | None, str | None]:
        client = async_client(settings.redis_url)
        keys = KeySpace(settings.key_prefix, "ns", topic)
        try:
            await check_definitions(settings, client, old.version)
            worker = Worker(settings, old, RedisStateStore(client, keys), None, None)

            async def drop(result: BatchResult) -> None:
                return None

            worker._publish = drop  # type: ignore[method-assign]
            for p, cid in ((0, c0), (1, c1)):
                await worker.own(p)
                events = [record(cid, p, 0, "purchase", 1, **buy), record(cid, p, 1, "web_visit", 20)]
                await worker.process(p, events)
            await worker.retire()
            calls = 0

            async def send(transitions: list[Transition]) -> None:
                nonlocal calls
                calls += 1
                if calls == 2:  # partition 1's publish: the broker is gone, apply stops with an error
                    raise ConnectionError("Kafka unreachable")

            with pytest.raises(ConnectionError):
                await change.apply(client, keys, 2, new, send, definitions_yaml="(new)")
            mid = stored_state(await _row(client, keys, 0, c0), "ns").definitions_version
            with pytest.raises(DefinitionsMismatch, match="built with definitions 'v-new'"):
                await check_definitions(settings, client, old.version)  # the old file, restarted
            await check_definitions(settings, client, new.version)  # the new file: accepted
            before_rerun = await change.moving_from(client, keys)  # what the rerun's log entry says
            await change.apply(client, keys, 2, new, send, definitions_yaml="(new)")
            return mid, before_rerun, await change.moving_from(client, keys)
        finally:
            await client.aclose()

    mid, before_rerun, after_rerun = asyncio.run(scenario())
    assert mid == "v-new", "partition 0 was applied before the stop"
    assert before_rerun == Definitions.default().version, "the rerun logs the version moved away from"
    assert after_rerun == "v-new", "a finished apply leaves no version it moves from"


async def _row(client: Any, keys: KeySpace, partition: int, cid: str) -> dict[str, str]:
    raw = await client.hgetall(keys.customer(partition, cid))
    return {k.decode(): v.decode("utf-8", "surrogateescape") for k, v in raw.items()}
