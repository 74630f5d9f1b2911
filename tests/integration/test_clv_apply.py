"""The fitted CLV definitions applied to a replayed namespace (real Redis and Kafka): `definitions diff`
predicts the clv tiers, `apply` writes them with their exact due times and publishes one transition per
customer entering the grid, and the read side counts each tier."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from segmentation import Definitions
from segmentation.clv import assess
from segmentation.state_mapping import state_from_mapping
from streams.admin import calibrate, calibrate_clv
from streams.admin import definitions_change as change
from streams.read import SegmentReader
from streams.sample import generator as sample
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.topics.publish import publish
from tests.integration.replay_helpers import customers_of, dump_namespace, replay_file
from tests.integration.worker_harness import make_settings, read_topic
from tests.services import Services


def test_fitted_clv_definitions_apply_to_stored_customers(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=250, days=300, seed=11), path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    asyncio.run(replay_file(settings, path, "clv", tmp_path))

    current = Definitions.default()
    history = calibrate_clv.replay_file(path, current, None)
    document = calibrate.base_document(None)
    document["clv"] = calibrate_clv.propose(history, current)
    document["version"] = "clv-1"
    new_path = tmp_path / "clv.yaml"
    new_path.write_text(yaml.safe_dump(document))
    new = Definitions.from_yaml(new_path)
    assert new.clv is not None
    keys = KeySpace(settings.key_prefix, "clv", settings.events_topic)
    topic = topic_name("clv-transitions")

    async def run() -> tuple[change.Matrix, change.ApplyResult]:
        from streams.bootstrap import producer as make_producer
        from streams.replay.rebuild import _ensure_topic

        await _ensure_topic(settings, topic)
        client = async_client(settings.redis_url)
        producer = make_producer(settings)
        await producer.start()
        try:

            async def send(transitions: list[Any]) -> None:
                await publish(producer, topic, change.envelope_items(transitions))

            predicted = await change.diff(client, keys, settings.topic_partitions, new)
            return predicted, await change.apply(client, keys, settings.topic_partitions, new, send, "x")
        finally:
            await producer.stop()
            await client.aclose()

    predicted, applied = asyncio.run(run())
    states = [state_from_mapping(row) for row in customers_of(dump_namespace(settings, "clv")).values()]
    tiers = Counter(s.seg_clv for s in states)
    assert set(tiers) <= {*new.clv.segments, "no_purchase"} and None not in tiers
    assert {cell: n for cell, n in predicted.moves().items() if cell[0] == "clv"} == {
        ("clv", "-", tier): n for tier, n in tiers.items()
    }
    assert applied.by_grid["clv"] == len(states)
    for s in states:  # the due time is the first microsecond of the next tier down
        assert s.due_clv == assess(s, new.clv, s.clock, new.scale)[1]  # type: ignore[arg-type]
        if s.due_clv is not None:
            assert assess(s, new.clv, s.due_clv - timedelta(microseconds=1), new.scale)[0] == s.seg_clv
            assert assess(s, new.clv, s.due_clv, new.scale)[0] != s.seg_clv
            assert s.next_due_at is not None and s.next_due_at <= s.due_clv
    assert any(s.due_clv is not None for s in states)

    records = asyncio.run(read_topic(settings, topic))
    published = Counter(
        d["to_segment"] for d in (orjson.loads(r.value)["data"] for r in records) if d["grid"] == "clv"
    )
    assert published == tiers

    async def counts() -> dict[str, int]:
        # a reader knows the grids of its definitions: the new file's, with the clv grid
        update = {"namespace": "clv", "definitions_file": new_path}
        reader = await SegmentReader.connect(settings.model_copy(update=update))
        try:
            return {tier: await reader.segment_count("clv", tier) for tier in tiers if tier is not None}
        finally:
            await reader.aclose()

    assert asyncio.run(counts()) == dict(tiers)
