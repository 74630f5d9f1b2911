"""The worker appends each batch's transitions to the customer's `history` field, also in the mapping it
caches for the next batch: batch after batch, after a cache eviction, and at the cap."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson

from segmentation import CustomerState, Definitions, Transition, apply, parse_event
from streams.settings import Settings
from streams.store.history_format import FIELD, decode, entry_of
from streams.store.port import InMemoryStateStore
from streams.store.writes import Written
from streams.worker.batch import Record
from streams.worker.loop import Worker

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def purchase(offset: int, customer: str, days: int) -> Record:
    body = {
        "event_id": f"e{offset}",
        "type": "purchase",
        "customer_id": customer,
        "occurred_at": (T0 + timedelta(days=days)).isoformat(),
        "schema_version": 1,
        "order_id": f"o{offset}",
        "amount": f"{10 + 70 * (offset % 2)}.00",
        "currency": "EUR",
        "channel": ("web", "store", "app")[offset % 3],
    }
    return Record("events", 0, offset, customer.encode(), orjson.dumps(body))


BATCHES = [
    [purchase(0, "c1", 0)],
    [purchase(1, "c1", 20)],
    [purchase(2, "c1", 45)],
    [purchase(3, "d1", 46), purchase(4, "d2", 46), purchase(5, "d3", 46)],  # c1 leaves the cache
    [purchase(6, "c1", 130)],
]


def core_transitions(customer: str) -> list[Transition]:
    state, out = CustomerState.new(customer), list[Transition]()
    for batch in BATCHES:
        for record in batch:
            event = parse_event(record.value or b"")
            if event.customer_id == customer:
                outcome = apply(state, event, Definitions.default())
                state = outcome.state
                out += outcome.transitions
    return out


def run(history_size: int) -> tuple[dict[str, str], list[bool], dict[str, str] | None]:
    async def go() -> tuple[dict[str, str], list[bool], dict[str, str] | None]:
        # one partition: every customer's records are in partition 0, where its id belongs
        settings = Settings(state_cache_size=2, history_size=history_size, topic_partitions=1)
        store = InMemoryStateStore()
        worker = Worker(settings, Definitions.default(), store, None, None)
        await worker.own(0)
        cached: list[bool] = []
        for batch in BATCHES:
            await worker.process(0, batch)
            await worker.drain()
            cached.append("c1" in worker.owned[0].cache)
        known = worker.owned[0].cache.get("c1")
        if known is None:
            return store._p(0).customers["c1"], cached, None
        mapping = known[1]  # the worker caches a `Written`: its history as coded text, the field's on demand
        assert isinstance(mapping, Written)
        return store._p(0).customers["c1"], cached, mapping.row()

    return asyncio.run(go())


def test_three_batches_and_an_eviction_keep_every_transition_with_its_id() -> None:
    want = core_transitions("c1")
    stored, cached, mapping = run(64)
    assert cached == [True, True, True, False, True]  # batches 2-3 from the cache, batch 5 from the store
    assert {"e0", "e1", "e2", "e6"} <= {t.cause for t in want}  # every batch of c1 moved it
    assert decode(stored[FIELD]) == ([entry_of(t) for t in want], False)
    assert [e.transition_id("c1") for e in decode(stored[FIELD])[0]] == [t.id for t in want]
    assert mapping is not None and mapping[FIELD] == stored[FIELD]  # the cached mapping has it too


def test_at_the_cap_the_oldest_go_and_the_history_says_trimmed() -> None:
    want = core_transitions("c1")
    assert len(want) > 6
    stored, _, _ = run(6)
    assert decode(stored[FIELD]) == ([entry_of(t) for t in want[-6:]], True)
