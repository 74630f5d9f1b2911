"""Erasures, customers coming back, resent and late events: the worker leaves the same store (states,
tombstones, due index, membership, KPIs) and publishes the same transitions whatever the batch size and
however small its cache (states then come back from the store, erased ones as their tombstone)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from segmentation import Definitions
from streams.settings import Settings
from streams.store.port import InMemoryStateStore
from streams.worker.batch import BatchResult, Record
from streams.worker.loop import Worker

T0 = datetime(2026, 1, 5, tzinfo=UTC)
CUSTOMERS = ("c1", "c2", "c3")


def _event(event_id: str, kind: str, customer: str, days: float, **fields: Any) -> dict[str, Any]:
    at = (T0 + timedelta(days=days)).isoformat()
    head = {
        "event_id": event_id,
        "type": kind,
        "customer_id": customer,
        "occurred_at": at,
        "schema_version": 1,
    }
    return head | fields


def _log(seed: int) -> list[dict[str, Any]]:
    """14 events over three customers: purchases in order, late ones, erasures (some dated before the last
    event), and events sent again with the same id."""
    rnd = random.Random(seed)
    clock = dict.fromkeys(CUSTOMERS, 0.0)
    sent: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for n in range(14):
        cid = rnd.choice(CUSTOMERS)
        r = rnd.random()
        if r < 0.15 and sent:
            out.append(rnd.choice(sent))
            continue
        if r < 0.35:
            body = _event(f"E{n}", "customer_erased", cid, clock[cid] + rnd.choice((-3, 0, 1)))
        elif r < 0.45:
            body = _event(f"L{n}", "purchase", cid, clock[cid] - rnd.choice((1, 5, 10)), order_id=f"o{n}",
                          amount="15.00", currency="EUR", channel="web")  # fmt: skip
        else:
            clock[cid] += rnd.choice((0.5, 2, 40))
            body = _event(f"P{n}", "purchase", cid, clock[cid], order_id=f"o{n}", amount="40.00",
                          currency="EUR", channel="store")  # fmt: skip
        out.append(body)
        sent.append(body)
    return out


def _run(log: list[dict[str, Any]], batch: int) -> tuple[dict[str, Any], list[str], int]:
    async def go() -> tuple[dict[str, Any], list[str], int]:
        store = InMemoryStateStore()
        settings = Settings(mode="replay", topic_partitions=1, state_cache_size=2)
        worker = Worker(settings, Definitions.default(), store, None, None)
        published: list[str] = []
        duplicates = 0
        publish = worker._publish

        async def keep(result: BatchResult) -> None:
            nonlocal duplicates
            published.extend(t.id for t in result.transitions)
            duplicates += result.duplicates
            await publish(result)

        worker._publish = keep  # type: ignore[method-assign]
        await worker.own(0)
        records = [
            Record("events", 0, n, b["customer_id"].encode(), orjson.dumps(b)) for n, b in enumerate(log)
        ]
        for start in range(0, len(records), batch):
            await worker.process(0, records[start : start + batch])
            await worker.drain()
        p = store._p(0)
        indexes = await store.read_indexes(0)
        stored = {
            "customers": p.customers,
            "erased": p.erased,
            "due": p.due,
            "members": {k: v for k, v in indexes.members.items() if v},
            "kpis": {g: f for g, f in indexes.kpis.items() if f},
            "moves": indexes.moves,
            "daily": indexes.daily,
        }
        return stored, published, duplicates

    return asyncio.run(go())


@pytest.mark.parametrize("seed", range(40))
def test_the_store_and_the_transitions_do_not_depend_on_the_batch_size(seed: int) -> None:
    log = _log(seed)
    whole = _run(log, 100)
    for batch in (1, 3):
        stored, published, duplicates = _run(log, batch)
        assert stored == whole[0], batch
        assert sorted(published) == sorted(whole[1]) and duplicates == whole[2], batch
