"""Events from before an erasure that arrive after it (sent again, or late) never bring the customer back,
whichever batch or worker process applies them (docs/privacy.md, "Tombstones"). Real broker, real Redis:
the first worker erases, a second one, with nothing cached, receives the older events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson

from segmentation import Definitions
from streams.read import SegmentReader
from streams.store.connection import async_client, sync_client
from streams.store.erasures import digest
from streams.store.keys import KeySpace
from streams.store.partitioning import partition_for
from tests.integration.test_worker_history import T0, ev, expected, purchase
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    read_topic,
    run_worker_until,
)
from tests.services import Services

GONE = "tomb-gone-4c1"  # erased; afterwards only events from before the erasure arrive
BACK = "tomb-back-9e2"  # erased; then older events, and one purchase after the erasure
ERASED_AT = T0 + timedelta(days=3)


def _before(cid: str) -> list[bytes]:
    return [
        ev(f"{cid}-p", "profile_update", cid, T0, birth_year=1961, region="FR"),
        purchase(f"{cid}-o1", cid, T0 + timedelta(hours=1), amount="500.00"),
        purchase(f"{cid}-o2", cid, T0 + timedelta(days=2), amount="300.00"),
    ]


def test_older_events_after_an_erasure_change_nothing_in_a_later_worker(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    first = [*_before(GONE), *_before(BACK)]
    first += [ev(f"{c}-erase", "customer_erased", c, ERASED_AT) for c in (GONE, BACK)]
    later: list[bytes] = []
    for cid in (GONE, BACK):
        later += _before(cid)  # sent again, same ids
        later += [  # late: new ids, dated before the erasure (one on its very instant)
            purchase(f"{cid}-late", cid, T0 + timedelta(days=1), amount="900.00"),
            ev(f"{cid}-late-p", "profile_update", cid, ERASED_AT, birth_year=1950),
        ]
    later.append(purchase(f"{BACK}-after", BACK, ERASED_AT + timedelta(days=1), amount="20.00"))

    _, want = expected([*first, *later], Definitions.default())  # the pure core, in log order

    def applied(n: int) -> Callable[[], bool]:
        return lambda: sum((o or -1) + 1 for o in applied_offsets(settings).values()) == n

    async def run() -> dict[str, Any]:
        await produce(settings, first, customer_key)
        await run_worker_until(settings, applied(len(first)))
        await produce(settings, later, customer_key)
        await run_worker_until(settings, applied(len(first) + len(later)))  # a new worker, nothing cached
        records = await read_topic(settings, settings.transitions_topic, len(want))
        client = async_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
        reader = SegmentReader(client, settings)
        try:
            return {
                "gone": await reader.get_customer(GONE),
                "back": await reader.get_customer(BACK, declared=True),
                "back_history": await reader.history(BACK),
                "transitions": [orjson.loads(r.value) for r in records],
            }
        finally:
            await client.aclose()

    got = asyncio.run(run())
    assert got["gone"] is None
    back = got["back"]
    assert back is not None
    assert (back.metrics.orders, back.metrics.monetary_minor) == (1, 2000)  # the purchase after, alone
    assert back.declared is not None
    assert back.declared.birth_year is None and back.declared.region is None
    assert back.segments["lifecycle"] == "new"
    for cid in (GONE, BACK):  # exactly the pure core's transitions, in order (each customer is one partition)
        mine = [t["id"] for t in got["transitions"] if t["subject"] == cid]
        assert mine == [t.id for t in want if t.customer_id == cid], cid
    first_ids = {orjson.loads(line)["event_id"] for line in first}
    later_causes = {(t.customer_id, t.cause) for t in want if t.cause not in first_ids}
    assert later_causes == {(BACK, f"{BACK}-after")}  # no transition from an older event, none by time
    assert {e.cause for e in got["back_history"].entries} == {f"{BACK}-after"}

    client = sync_client(settings.redis_url)
    try:
        for cid in (GONE, BACK):
            tomb = KeySpace(settings.key_prefix, "main", settings.events_topic).erased(partition_for(cid, 2))
            assert client.hget(tomb, digest(cid)) is not None, cid
            assert not any(cid.encode() in v for kv in client.hgetall(tomb).items() for v in kv)
    finally:
        client.close()
