"""Transitions on a transitions topic whose `max.message.bytes` is below the broker's 1 MiB default: every
transition is a few hundred bytes, so every one must reach the topic however many a batch makes. Real Kafka,
real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams import cli
from streams.admin import calibrate
from streams.bootstrap import ensure_topics
from streams.settings import Settings
from tests.integration.test_worker_history import T0, purchase
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    read_topic,
    run_worker_until,
)
from tests.services import Services

TOPIC_MAX = 100_000  # the transitions topic's max.message.bytes: ~150 transitions


def test_the_transitions_of_one_batch_fit_a_smaller_transitions_topic(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """400 first purchases in one poll make ~5,000 transitions (~3 MB): they went to the broker in record
    batches of up to 1 MiB, which a topic of a smaller `max.message.bytes` refused as too large (not
    retriable): the worker stopped before its commit, and again on every restart (the partition stalled)."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1, batch_max_events=1000)
    assert asyncio.run(_first_purchases(settings)) == CUSTOMERS * 13


def test_definitions_apply_publishes_its_moves_to_a_smaller_transitions_topic(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`definitions apply` moving every customer published a partition's moves in one call, in record batches
    of up to 1 MiB: refused by the topic, the apply stopped half way with a traceback."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1, batch_max_events=1000)
    asyncio.run(_first_purchases(settings))
    doc = calibrate.base_document(None)
    doc["version"] = "cheaper-medium"
    doc["value"]["tiers"][2]["from"] = "30"  # every customer (40.00) moves from low to medium
    path = tmp_path / "v2.yaml"
    path.write_text(yaml.safe_dump(doc))
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    assert cli.main(["definitions", "apply", str(path)]) == 0
    records = asyncio.run(read_topic(settings, settings.transitions_topic, CUSTOMERS * 14))
    moves = [orjson.loads(r.value)["data"] for r in records]
    value_moves = [m for m in moves if m["cause"] == "definitions" and m["grid"] == "value"]
    assert len(value_moves) == CUSTOMERS


CUSTOMERS = 400


async def _first_purchases(settings: Settings) -> int:
    """A transitions topic of TOPIC_MAX bytes, then one first purchase of each of CUSTOMERS customers, applied
    by the worker; returns the transitions on the topic."""
    lines = [purchase(f"e{n}", f"customer-{n}", T0) for n in range(CUSTOMERS)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        config = {"max.message.bytes": str(TOPIC_MAX)}
        await admin.create_topics([NewTopic(settings.transitions_topic, 1, 1, topic_configs=config)])
    finally:
        await admin.close()
    await ensure_topics(settings)
    await produce(settings, lines, customer_key)
    await run_worker_until(settings, lambda: applied_offsets(settings)[0] == len(lines) - 1)
    return len(await read_topic(settings, settings.transitions_topic, 1))
