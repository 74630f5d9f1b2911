"""Lazy adoption (SEGSTREAM_ADOPT_DEFINITIONS=true) moves a customer with no event at the time the new
definitions say, not at the time its earlier definitions put in the due index.

Before: the sweep loaded only the customers the due index named, at their old due times. c1 bought on
1 January under the default definitions (new for 30 days: due on the 31st); the adopting worker's
definitions make it active on the 6th and at risk on the 11th; a sweep to the 16th published nothing for
it (found in review). Now the first claim after an adoption walks the partition once
(`streams/worker/realign.py`), and each loaded state is aligned before its due times are read
(`batch.advance_all`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import orjson
from aiokafka import TopicPartition

from segmentation import Definitions, advance
from segmentation.state_mapping import state_from_mapping
from segmentation.transition import Transition
from streams.settings import Settings
from streams.store.definitions_record import InMemoryDefinitionsRecord
from streams.store.port import InMemoryStateStore
from streams.worker.batch import BatchResult, Record
from streams.worker.loop import Worker
from streams.worker.namespace_follow import check_claim
from tests.unit.seg_helpers import definitions_with
from tests.unit.test_worker_follow import TOPIC, Assignment

BUY = {"amount": "40.00", "currency": "EUR", "channel": "web"}
EARLIER = {"new_for_days": 5, "at_risk_after_days": 10, "lost_after_days": 60, "reactivated_for_days": 5}
TP = TopicPartition(TOPIC, 0)


def record(n: int, cid: str, kind: str, day: int, **fields: Any) -> Record:
    body = {"event_id": f"e{n}", "type": kind, "customer_id": cid, "schema_version": 1}
    body |= {"occurred_at": f"2026-01-{day:02d}T00:00:00+00:00", **fields}
    return Record(TOPIC, 0, n, cid.encode(), orjson.dumps(body))


async def started(
    definitions: Definitions, store: InMemoryStateStore, names: InMemoryDefinitionsRecord, adopt: bool
) -> tuple[Worker, list[Transition]]:
    """A worker as `worker_runtime` starts one: the rule at start-up, then Kafka assigns partition 0."""
    settings = Settings(mode="replay", topic_partitions=1, namespace="main", adopt_definitions=adopt)
    await check_claim(names, "main", definitions.version, adopt)
    worker = Worker(settings, definitions, store, None, Assignment([TP]))
    worker.recorded = names
    published: list[Transition] = []

    async def keep(result: BatchResult) -> None:
        published.extend(result.transitions)

    worker._publish = keep  # type: ignore[method-assign]
    await worker.take(TP)
    return worker, published


def test_an_adopting_worker_moves_a_customer_without_events_at_the_new_definitions_times() -> None:
    old, new = Definitions.default(), definitions_with(lifecycle=EARLIER, version="adopt-new")

    async def go() -> tuple[Any, list[Transition], InMemoryStateStore, InMemoryDefinitionsRecord, bool]:
        store, names = InMemoryStateStore(), InMemoryDefinitionsRecord()
        first, _ = await started(old, store, names, adopt=False)
        buys = [
            record(0, "c1", "purchase", 1, order_id="o0", **BUY),
            record(1, "c2", "purchase", 1, order_id="o1", **BUY),
        ]
        await first.process(0, buys)
        stored_c1 = state_from_mapping(dict(store._p(0).customers["c1"]))
        assert first.owned[0].realign is None, "no adoption yet: no walk"
        adopting, published = await started(new, store, names, adopt=True)
        await adopting.process(0, [record(2, "c2", "web_visit", 16)])
        await adopting.sweep(force=True)  # to the partition's watermark, 16 January
        again, _ = await started(new, store, names, adopt=True)  # a later claim: the walk is done
        return stored_c1, published, store, names, again.owned[0].realign is None

    stored_c1, published, store, names, no_second_walk = asyncio.run(go())
    expected = advance(stored_c1, datetime(2026, 1, 16, tzinfo=UTC), new).transitions
    assert [(t.grid, t.to_segment) for t in expected if t.grid == "lifecycle"] == [
        ("lifecycle", "active"),
        ("lifecycle", "at_risk"),
    ]
    got = [t for t in published if t.customer_id == "c1"]
    # what the moves are (the worker publishes nothing here, so its transitions carry no id: NO_ID)
    fields = attrgetter("grid", "from_segment", "to_segment", "effective_at", "cause", "definitions_version")
    moved, want = sorted(map(fields, got), key=repr), sorted(map(fields, expected), key=repr)
    assert moved == want, "c1 moved as apply + sweep would"
    c1 = state_from_mapping(dict(store._p(0).customers["c1"]))
    assert (c1.definitions_version, c1.seg_lifecycle) == ("adopt-new", "at_risk")
    walked = names.fields["main"]["realigned:0"]
    assert walked == names.fields["main"]["realign"] and walked.startswith("adopt-new ")
    assert no_second_walk


def test_a_running_adopting_worker_does_not_adopt_again_at_a_claim() -> None:
    """Two workers of different versions, both started with SEGSTREAM_ADOPT_DEFINITIONS=true (a rolling update
    that kept the setting): the later start-up adopts its version; the earlier worker, at its next claim, is
    refused (exit 3) instead of moving every customer back (found in review: each claim re-adopted, walked
    the partition and published `definitions` moves back and forth)."""
    old, new = Definitions.default(), definitions_with(lifecycle=EARLIER, version="adopt-new")

    async def go() -> tuple[Worker, list[Transition], str | None]:
        store, names = InMemoryStateStore(), InMemoryDefinitionsRecord()
        first, _ = await started(old, store, names, adopt=False)
        await first.process(0, [record(0, "c1", "purchase", 1, order_id="o0", **BUY)])
        running, published = await started(new, store, names, adopt=True)
        await running.sweep(force=True)
        await started(old, store, names, adopt=True)  # another worker, started later with the old file
        published.clear()
        await running.listener().on_partitions_revoked([TP])  # a rebalance: the partition goes ...
        await running.listener().on_partitions_assigned([TP])  # ... and comes back to the running worker
        await running.sweep(force=True)
        return running, published, await names.version("main")

    running, published, recorded = asyncio.run(go())
    assert recorded == Definitions.default().version, "the later start-up's adoption stands"
    assert running.refused is not None and 0 not in running.owned
    assert published == []
