"""`definitions diff` predicts, cell by cell, what `definitions apply` then does; a second apply is a no-op;
calibrate proposes valid ascending breakpoints from the population."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
import yaml

from segmentation import CustomerState, Definitions
from streams import calibrate, sample
from streams import definitions_change as change
from streams.keys import KeySpace
from streams.publish import publish
from tests.integration.replay_helpers import customers_of, dump_namespace, replay_file
from tests.integration.worker_harness import make_settings, read_topic
from tests.services import Services


def changed_definitions(rng: random.Random) -> dict[str, Any]:
    doc = calibrate.base_document(None)
    doc["version"] = "test-2"
    doc["lifecycle"]["at_risk_after_days"] = rng.choice([45, 60, 75])
    doc["lifecycle"]["lost_after_days"] = rng.choice([120, 150])
    doc["rfm"]["recency_days"] = sorted(rng.sample(range(10, 400), 4))
    doc["rfm"]["monetary"] = [str(x) for x in sorted(rng.sample(range(20, 2000), 4))]
    doc["value"]["tiers"][2]["from"] = str(rng.choice([50, 150, 250]))
    doc["audiences"]["vip_recent"] = 'value in ("medium", "high", "top") and last_purchase_at within 90 days'
    return doc


def test_diff_predicts_apply_cell_by_cell_and_second_apply_is_a_no_op(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    spec = sample.SampleSpec(customers=rng.randint(150, 300), days=rng.randint(200, 500), seed=seed)
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(spec, path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=3)
    asyncio.run(replay_file(settings, path, "d", tmp_path))
    new_path = tmp_path / "new.yaml"
    new_path.write_text(yaml.safe_dump(changed_definitions(rng)))
    new = Definitions.from_yaml(new_path)
    keys = KeySpace(settings.key_prefix, "d", settings.events_topic)
    topic = topic_name("definitions-transitions")
    before = customers_of(dump_namespace(settings, "d"))

    async def run() -> tuple[change.Matrix, change.ApplyResult, change.ApplyResult]:
        from streams.bootstrap import producer as make_producer
        from streams.replay import _ensure_topic

        await _ensure_topic(settings, topic)
        client = aioredis.Redis.from_url(settings.redis_url)
        producer = make_producer(settings)
        await producer.start()
        try:

            async def send(transitions: list[Any]) -> None:
                await publish(producer, topic, change.envelope_items(transitions))

            predicted = await change.diff(client, keys, settings.topic_partitions, new)
            first = await change.apply(client, keys, settings.topic_partitions, new, send, "x")
            second = await change.apply(client, keys, settings.topic_partitions, new, send, "x")
            return predicted, first, second
        finally:
            await producer.stop()
            await client.aclose()

    predicted, first, second = asyncio.run(run())
    after = customers_of(dump_namespace(settings, "d"))

    # what apply did, measured on the stored states before and after
    done = change.Matrix()
    assert set(before) == set(after)
    for key in before:
        done.add(CustomerState.from_mapping(before[key]), CustomerState.from_mapping(after[key]))
    assert done.cells == predicted.cells, f"seed {seed}"
    assert predicted.moves(), f"seed {seed}: the change should move someone"
    assert all(CustomerState.from_mapping(row).definitions_version == "test-2" for row in after.values())

    # the transitions published are exactly the off-diagonal cells
    records = asyncio.run(read_topic(settings, topic))
    published = Counter(
        (d["grid"], d["from_segment"] or "-", d["to_segment"] or "-")
        for d in (orjson.loads(r.value)["data"] for r in records)
    )
    assert dict(published) == predicted.moves()
    assert all(orjson.loads(r.value)["data"]["cause"] == "definitions" for r in records)
    assert first.transitions == sum(predicted.moves().values())

    # second apply: nothing written, nothing emitted, state unchanged
    assert second.transitions == 0 and second.written == 0
    assert second.matrix.already_current == second.matrix.customers
    assert customers_of(dump_namespace(settings, "d")) == after


def test_calibrate_proposes_ascending_breakpoints(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    spec = sample.SampleSpec(customers=300, days=365, seed=5)
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(spec, path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    asyncio.run(replay_file(settings, path, "cal", tmp_path))
    keys = KeySpace(settings.key_prefix, "cal", settings.events_topic)

    async def read() -> calibrate.Population:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            return await calibrate.read_population(client, keys, 2, 2)
        finally:
            await client.aclose()

    population = asyncio.run(read())
    proposal = calibrate.propose(population)
    for values in proposal.values():
        assert len(values) == 4
    doc = calibrate.new_document(calibrate.base_document(None), proposal, None)
    new = Definitions.from_mapping(doc)  # validates: positive, strictly ascending, map covers 125 cells
    assert new.version != Definitions.default().version
    assert calibrate.bump_version("2026.11-1") == "2026.11-2"
