"""`definitions apply` of v2, back to v1, then v2 again on real Redis: every move published has its own id,
and the stored history lists each under the id that was published."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from segmentation import Definitions, Transition
from streams.admin import calibrate
from streams.admin import definitions_change as change
from streams.sample import generator as sample
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from tests.integration.replay_helpers import replay_file
from tests.integration.test_definitions_change import read_side
from tests.integration.worker_harness import make_settings
from tests.services import Services


def test_moves_back_and_forth_between_versions_never_share_an_id(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    spec = sample.SampleSpec(customers=120, days=300, seed=5)
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(spec, path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    asyncio.run(replay_file(settings, path, "d", tmp_path))
    doc = calibrate.base_document(None)
    doc["version"] = "v2"
    doc["lifecycle"]["at_risk_after_days"] = 45
    doc["value"]["tiers"][2]["from"] = "150"
    v2_path, v1_path = tmp_path / "v2.yaml", tmp_path / "v1.yaml"
    v2_path.write_text(yaml.safe_dump(doc))
    v1_path.write_text(yaml.safe_dump(calibrate.base_document(None)))
    v2, v1 = Definitions.from_yaml(v2_path), Definitions.from_yaml(v1_path)
    keys = KeySpace(settings.key_prefix, "d", settings.events_topic)
    published: list[Transition] = []

    async def run() -> None:
        client = async_client(settings.redis_url)

        async def send(transitions: list[Any]) -> None:
            published.extend(transitions)

        try:
            for definitions in (v2, v1, v2):
                await change.apply(client, keys, settings.topic_partitions, definitions, send, None)
        finally:
            await client.aclose()

    asyncio.run(run())
    moves = {(t.customer_id, t.grid, t.from_segment, t.to_segment, t.effective_at) for t in published}
    assert published and len(moves) < len(published), "the change and its return repeat some moves"
    assert not [i for i, n in Counter(t.id for t in published).items() if n > 1], "an id published twice"
    assert {t.definitions_change for t in published} == {1, 2, 3}
    _, _, histories = asyncio.run(read_side(settings.model_copy(update={"namespace": "d"})))
    kept = set().union(*histories.values())
    assert {t.id for t in published if t.definitions_change == 3} <= kept
