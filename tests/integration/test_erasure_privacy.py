"""`customer_erased` leaves nothing of the customer in Redis (docs/privacy.md): after it, a scan of every key
under the test's prefix finds the id in no key name and no value (hash, history, membership, due index,
dedup window), and the segment counts and KPIs equal those of the customers that remain."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import redis

from segmentation import Definitions
from streams.read import SegmentReader
from streams.store.connection import async_client, sync_client
from tests.integration.test_worker_history import T0, ev, purchase
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    run_worker_until,
)
from tests.services import Services

GONE = "erase-me-7f3a9"
KEPT = "keep-me-21c0"


def _values(client: redis.Redis, key: bytes) -> list[bytes]:
    kind = client.type(key)
    found: list[Any]
    if kind == b"hash":
        found = [b for pair in client.hgetall(key).items() for b in pair]
    elif kind == b"set":
        found = list(client.smembers(key))
    elif kind == b"zset":
        found = list(client.zrange(key, 0, -1))
    elif kind == b"list":
        found = list(client.lrange(key, 0, -1))
    elif kind == b"string":
        found = [client.get(key) or b""]
    else:
        raise AssertionError(f"unexpected type {kind!r} of {key!r}")
    return [bytes(v) for v in found]


def test_after_erasure_no_key_or_value_holds_the_id(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    lines: list[bytes] = []
    for cid in (GONE, KEPT):
        lines += [
            ev(f"{cid}-p", "profile_update", cid, T0, birth_year=1977, region="FR", gender="female"),
            purchase(f"{cid}-o1", cid, T0 + timedelta(hours=1), amount="50.00"),
            ev(f"{cid}-m", "email_open", cid, T0 + timedelta(days=1)),
            purchase(f"{cid}-o2", cid, T0 + timedelta(days=2), amount="70.00"),
        ]
    lines.append(ev("gone-x", "customer_erased", GONE, T0 + timedelta(days=3)))

    async def run() -> dict[str, Any]:
        await produce(settings, lines, customer_key)
        await run_worker_until(
            settings, lambda: sum((o or -1) + 1 for o in applied_offsets(settings).values()) == len(lines)
        )
        client = async_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
        reader = SegmentReader(client, settings)
        try:
            return {
                "gone": await reader.get_customer(GONE),
                "gone_history": await reader.history(GONE),
                "kept": await reader.get_customer(KEPT),
                "kpis": {
                    grid: await reader.segment_kpis(grid) for grid in Definitions.default().grid_segments
                },
            }
        finally:
            await client.aclose()

    answers = asyncio.run(run())
    assert answers["gone"] is None and answers["gone_history"] is None and answers["kept"] is not None
    kept = answers["kept"]
    for grid, kpis in answers["kpis"].items():  # only the kept customer is counted, with its own figures
        assert sum(k.customers for k in kpis.values()) == 1, grid
        segment = kept.segments[grid]
        assert kpis[segment].customers == 1 and kpis[segment].revenue_minor == kept.metrics.monetary_minor

    client = sync_client(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{redis_prefix}*", count=1000))
        assert any(KEPT.encode() in key for key in keys)  # the scan does see customers' keys
        for key in keys:
            assert GONE.encode() not in key, key
            for value in _values(client, key):
                assert GONE.encode() not in value and b"erase-me" not in value, (key, value)
    finally:
        client.close()
