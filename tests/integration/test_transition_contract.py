"""The published contract, checked on what a real worker puts on the transitions topic."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from segmentation.transition import transition_key
from streams.settings import Settings
from tests.integration.test_worker_history import T0, ev, purchase
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    read_topic,
    run_worker_until,
)
from tests.services import Services

ODD_IDS = ["Ünïcødé-客户-🙂", "x" * 128, "a b  c", "c'\"\\<>&;", "c-é"]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)$")


def _events(customer: str) -> list[bytes]:
    day = timedelta(days=1)
    return [
        ev(f"{customer}-p", "profile_update", customer, T0, birth_year=1990, region="fr"),
        ev(f"{customer}-s", "email_sent", customer, T0 + timedelta(hours=1)),
        ev(f"{customer}-o", "email_open", customer, T0 + timedelta(hours=2)),
        purchase(f"{customer}-1", customer, T0 + day),
        ev(f"{customer}-v", "survey_response", customer, T0 + 2 * day, score=9),
        purchase(f"{customer}-2", customer, T0 + 3 * day, amount="900.00", channel="app"),
        ev(
            f"{customer}-r",
            "refund",
            customer,
            T0 + 4 * day,
            order_id=f"o-{customer}-2",
            amount="800.00",
            currency="EUR",
        ),
        purchase(f"{customer}-3", customer, T0 + 200 * day),
        ev(f"{customer}-u", "email_unsubscribe", customer, T0 + 201 * day),
        purchase(f"{customer}-late", customer, T0 + 100 * day),
        ev(f"{customer}-x", "customer_erased", customer, T0 + 300 * day),
        purchase(f"{customer}-4", customer, T0 + 301 * day),
    ]


def _all_applied(settings: Settings, total: int) -> Callable[[], bool]:
    return lambda: sum((o if o is not None else -1) + 1 for o in applied_offsets(settings).values()) == total


def test_every_transition_matches_the_documented_envelope(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    lines = [line for c in ODD_IDS for line in _events(c)]
    total = len(lines)

    async def scenario() -> list[Any]:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(settings.transitions_topic, 5, 1)])
        await admin.close()
        await produce(settings, lines, customer_key)
        await run_worker_until(settings, _all_applied(settings, total))
        return await read_topic(settings, settings.transitions_topic, 1)

    records = asyncio.run(scenario())
    chains: dict[tuple[str, str], str | None] = {}
    partition_of: dict[bytes, int] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        env = orjson.loads(r.value)
        data = env["data"]
        assert set(env) == {
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "data",
        }
        assert (
            env["id"] == data["id"]
            and env["subject"] == data["customer_id"]
            and env["time"] == data["effective_at"]
        )
        assert r.key == data["customer_id"].encode()
        assert partition_of.setdefault(r.key, r.partition) == r.partition
        assert ISO.match(data["effective_at"]), data["effective_at"]
        assert isinstance(data["why"], dict) and data["why"].get("rule"), data
        assert all(isinstance(v, str) for v in data["why"].values()), data
        if data["cause"] != "definitions":
            assert data["id"] == transition_key(
                data["customer_id"],
                data["grid"],
                data["from_segment"],
                data["to_segment"],
                data["effective_at"],
                data["cause"],
            )
        key = (data["customer_id"], data["grid"])
        assert chains.get(key) == data["from_segment"], (key, chains.get(key), data)
        chains[key] = data["to_segment"]
