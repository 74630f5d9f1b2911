"""`definitions diff` predicts, cell by cell, what `definitions apply` then does; a second apply is a no-op;
calibrate proposes valid ascending breakpoints from the population."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from segmentation import Definitions
from segmentation.state_mapping import is_segment, state_from_mapping, view_of
from streams.admin import calibrate
from streams.admin import definitions_change as change
from streams.read import SegmentReader
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.topics.publish import publish
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


@pytest.mark.cluster
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
        from streams.replay.rebuild import _ensure_topic

        await _ensure_topic(settings, topic)
        client = async_client(settings.redis_url)
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
        done.add(state_from_mapping(before[key]), state_from_mapping(after[key]))
    assert done.cells == predicted.cells, f"seed {seed}"
    assert predicted.moves(), f"seed {seed}: the change should move someone"
    assert all(state_from_mapping(row).definitions_version == "test-2" for row in after.values())

    # the transitions published are exactly the off-diagonal cells
    records = asyncio.run(read_topic(settings, topic))
    published = Counter(
        (d["grid"], d["from_segment"] or "-", d["to_segment"] or "-")
        for d in (orjson.loads(r.value)["data"] for r in records)
    )
    assert dict(published) == predicted.moves()
    assert all(orjson.loads(r.value)["data"]["cause"] == "definitions" for r in records)
    assert first.transitions == sum(predicted.moves().values())

    # the read side moved with the states: membership, KPIs and history agree with the hashes and the topic
    expected_members, expected_kpis = indexes_from_hashes(after)
    got_members, got_kpis, histories = asyncio.run(read_side(settings.model_copy(update={"namespace": "d"})))
    assert got_members == expected_members
    assert got_kpis == expected_kpis
    for r in records:
        event = orjson.loads(r.value)
        assert event["data"]["id"] in histories[event["subject"]], "history holds the definitions move"

    # second apply: nothing written, nothing emitted, state unchanged
    assert second.transitions == 0 and second.written == 0
    assert second.matrix.already_current == second.matrix.customers
    assert customers_of(dump_namespace(settings, "d")) == after


def indexes_from_hashes(
    hashes: dict[str, dict[str, str]],
) -> tuple[dict[tuple[str, str], set[str]], dict[tuple[str, str], tuple[int, int, int]]]:
    """(grid, segment) -> members and (customers, revenue, orders), recomputed from the customer hashes."""
    members: dict[tuple[str, str], set[str]] = defaultdict(set)
    kpis: Counter[tuple[str, str, str]] = Counter()
    for key, stored in hashes.items():
        cid = key.rsplit(":c:", 1)[1]
        row = view_of(stored, state_from_mapping(stored))  # an audience's `not_member` is not stored
        for name, segment in row.items():
            if is_segment(name) and segment:
                cell = (name, segment)
                members[cell].add(cid)
                kpis[(*cell, "c")] += 1
                kpis[(*cell, "r")] += int(row["monetary_minor"])
                kpis[(*cell, "o")] += int(row["orders"])
    return dict(members), {
        cell: (kpis[(*cell, "c")], kpis[(*cell, "r")], kpis[(*cell, "o")]) for cell in members
    }


async def read_side(
    settings: Settings,
) -> tuple[dict[tuple[str, str], set[str]], dict[tuple[str, str], tuple[int, int, int]], dict[str, set[str]]]:
    """What readers see: members and KPIs of every occupied segment, and each customer's history ids."""
    client = async_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    reader = SegmentReader(client, settings)
    try:
        members: dict[tuple[str, str], set[str]] = {}
        kpis: dict[tuple[str, str], tuple[int, int, int]] = {}
        customers: set[str] = set()
        for grid, segments in reader.grids.items():
            for segment in segments:
                ids = {m async for m in reader.iter_members(grid, segment)}
                if ids:
                    members[(grid, segment)] = ids
                    customers |= ids
            for segment, k in (await reader.segment_kpis(grid)).items():
                if k.customers or k.revenue_minor or k.orders:
                    kpis[(grid, segment)] = (k.customers, k.revenue_minor, k.orders)
        histories: dict[str, set[str]] = {}
        for cid in customers:
            history = await reader.history(cid)
            histories[cid] = {e.id for e in history.entries} if history else set()
        return members, kpis, histories
    finally:
        await client.aclose()


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
        client = async_client(settings.redis_url)
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
