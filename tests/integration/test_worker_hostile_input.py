"""Hostile input on the real worker, broker and Redis (issue 11): huge amounts, a counter that would overflow,
an event from the far future, records not keyed by their customer id."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from segmentation.instants import to_us
from streams.bootstrap import keyspace
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.partitioning import partition_for
from streams.store.port import CommitRefused
from tests.integration.test_worker_history import T0, ev, purchase
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    read_topic,
    run_worker_until,
    stored_customers,
)
from tests.services import Services

HUGE = "999999999999999.99"  # a valid amount for the event contract (below 10^15)


def _all_applied(settings: Settings, total: int) -> Callable[[], bool]:
    return lambda: sum((o if o is not None else -1) + 1 for o in applied_offsets(settings).values()) == total


def _dead(records: list[Any]) -> list[tuple[bytes, bytes]]:
    """(exception class, message) of each dead letter, in offset order."""
    out = []
    for r in sorted(records, key=lambda r: int(dict(r.headers)["__connect.errors.offset"])):
        headers = dict(r.headers)
        out.append(
            (headers["__connect.errors.exception.class.name"], headers["__connect.errors.exception.message"])
        )
    return out


def _watermarks(settings: Settings) -> dict[int, int | None]:
    client = sync_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    try:
        keys = keyspace(settings)
        values = [client.hget(keys.partition_meta(p), "watermark") for p in range(settings.topic_partitions)]
        return {p: None if v is None else int(str(v)) for p, v in enumerate(values)}
    finally:
        client.close()


def _huge_purchases(customer: str) -> list[bytes]:
    lines = [purchase("h0", customer, T0)]
    lines += [purchase(f"h{n}", customer, T0 + timedelta(hours=n), amount=HUGE) for n in range(1, 96)]
    return [*lines, purchase("h96", customer, T0 + timedelta(days=1))]


def test_95_huge_purchases_are_dead_letters_and_the_stream_goes_on(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """Before: the 95 purchases overflowed a KPI counter half way through the commit, the worker crashed, and
    each restart applied the batch again on top (orders 97, 192, ...)."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1)
    lines = _huge_purchases("hugo")

    async def scenario() -> list[Any]:
        await produce(settings, lines, customer_key)
        await run_worker_until(settings, _all_applied(settings, len(lines)))
        return await read_topic(settings, settings.dlq_topic, 95)

    dead = _dead(asyncio.run(scenario()))
    message = f"purchase amount: {HUGE} EUR is above the limit of 1000000000 EUR"
    message += " (max_amount of definitions 2026.12-1)"
    assert dead == [(b"segmentation.limits.AmountAboveLimit", message.encode())] * 95
    stored = stored_customers(settings)["hugo"]
    assert (stored["orders"], stored["monetary_minor"]) == ("2", "8000")


def test_a_counter_overflow_stops_the_worker_with_nothing_of_the_batch_written(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """With a max_amount high enough to let them through, the 95 purchases overflow the KPI counter: the
    commit is refused before its first write, the worker stops with the reason, a restart refuses again and
    never applies anything twice (the stored state always accounts for exactly the stored offset)."""
    raw = yaml.safe_load((Path(__file__).parents[2] / "segmentation" / "definitions.yaml").read_text())
    raw.update(version="test-huge", max_amount="1000000000000000")
    path = tmp_path / "definitions.yaml"
    path.write_text(yaml.safe_dump(raw))
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1, definitions_file=path)
    lines = _huge_purchases("hugo")

    def consistent() -> int:
        """Orders stored for hugo: each of his events is a purchase, so they equal the applied offset + 1."""
        offset = applied_offsets(settings)[0]
        orders = int(stored_customers(settings).get("hugo", {}).get("orders", "0"))
        assert orders == (-1 if offset is None else offset) + 1
        return orders

    asyncio.run(produce(settings, lines, customer_key))
    for _attempt in range(2):  # the first run and a restart
        with pytest.raises(
            CommitRefused, match=r"OVERFLOW .*revenue_minor.* could leave the 64-bit integer range"
        ):
            asyncio.run(run_worker_until(settings, lambda: False, timeout=60))
        assert consistent() < 93  # 92 purchases of ~1e17 minor units fit in a 64-bit counter, 93 do not


def test_one_event_from_the_far_future_is_a_dead_letter_and_moves_nobody(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """Live mode. Before: the 9000-01-01 purchase moved its partition's watermark to year 9000 and the next
    sweep sent every customer of that partition to `lost`."""
    settings = make_settings(services, topic_name, redis_prefix, mode="live")
    recent = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    customers = [f"n{n}" for n in range(6)]
    normal = [purchase(f"p{n}", cid, recent + timedelta(minutes=n)) for n, cid in enumerate(customers)]
    future = purchase("zz", "zed", datetime(9000, 1, 1, tzinfo=UTC))
    lines = [*normal[:3], future, *normal[3:]]

    async def scenario() -> list[Any]:
        await produce(settings, lines, customer_key)
        await run_worker_until(settings, _all_applied(settings, len(lines)))
        await asyncio.sleep(0)
        return await read_topic(settings, settings.dlq_topic, 1)

    dead = _dead(asyncio.run(scenario()))
    assert len(dead) == 1
    assert dead[0][0] == b"streams.worker.batch.TooFarInFuture"
    assert dead[0][1].startswith(b"purchase occurred_at: 9000-01-01T00:00:00+00:00 is after ")
    assert dead[0][1].endswith(b", the record's time plus SEGSTREAM_MAX_FUTURE_SKEW_S")
    stored = stored_customers(settings)
    assert sorted(stored) == customers
    assert {cid: row["lifecycle"] for cid, row in stored.items()} == dict.fromkeys(customers, "new")
    want: dict[int, int | None] = dict.fromkeys(range(settings.topic_partitions))
    for n, cid in enumerate(customers):
        p = partition_for(cid, settings.topic_partitions)
        want[p] = max(want[p] or 0, to_us(recent + timedelta(minutes=n)))
    assert _watermarks(settings) == want


def test_records_not_keyed_by_their_customer_id_are_dead_letters(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """Before: key `g1` with body customer `g2` made a second `g2` hash in g1's partition, which no reader
    finds (readers compute the partition from the id); an unkeyed one landed wherever the producer put it."""
    settings = make_settings(services, topic_name, redis_prefix)
    good = purchase("k1", "g1", T0)
    wrong = purchase("k2", "g2", T0 + timedelta(hours=1))
    unkeyed = ev("k3", "web_visit", "g3", T0 + timedelta(hours=2))
    keys = {good: b"g1", wrong: b"g1", unkeyed: None}
    lines = [good, wrong, unkeyed]

    async def scenario() -> list[Any]:
        await produce(settings, lines, keys.__getitem__)
        await run_worker_until(settings, _all_applied(settings, len(lines)))
        return await read_topic(settings, settings.dlq_topic, 2)

    dead = sorted(_dead(asyncio.run(scenario())))
    why = "producers must key events by customer id (README, Events in)"
    assert dead == sorted(
        [
            (
                b"streams.worker.batch.WrongKey",
                f"record key 'g1' is not the event's customer_id 'g2': {why}".encode(),
            ),
            (
                b"streams.worker.batch.WrongKey",
                f"record has no key; the event's customer_id is 'g3': {why}".encode(),
            ),
        ]
    )
    assert sorted(stored_customers(settings)) == ["g1"]
