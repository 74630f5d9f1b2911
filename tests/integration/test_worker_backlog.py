"""A live worker that starts with a backlog (a restart, or following a promote to a namespace behind it)
first applies what the partition held when it took it, sweeping by event time like a replay; only then does
the wall clock move customers on. Otherwise a customer whose next purchase sits in the backlog would be
moved to `at_risk` by the wall clock first and publish moves a continuous run never makes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from streams.bootstrap import keyspace
from streams.sample import generator as sample
from streams.store.connection import sync_client
from streams.store.partitioning import partition_for
from tests.integration.replay_helpers import replay_file
from tests.integration.test_replay import produce_like_the_file
from tests.integration.test_worker_kill import caught_up, end_offsets
from tests.integration.worker_harness import make_settings, read_topic, run_worker_until
from tests.services import Services


def test_a_live_worker_with_a_backlog_publishes_what_a_replay_does_up_to_the_watermark(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    spec = sample.SampleSpec(customers=40, days=300, seed=12)
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(spec, path)
    lines = [x for x in path.read_bytes().splitlines() if x.strip()]
    base = make_settings(services, topic_name, redis_prefix, topic_partitions=2, sweep_interval_ms=10)
    emit = topic_name("replay-transitions")
    asyncio.run(replay_file(base, path, "ref", tmp_path, emit=emit))

    # live mode, the whole log waiting in the topic, small batches: sweeps run between them
    live = base.model_copy(update={"namespace": "live", "mode": "live", "batch_max_events": 3})
    asyncio.run(produce_like_the_file(live, lines))
    asyncio.run(run_worker_until(live, caught_up(live, end_offsets(live)), timeout=180))

    client = sync_client(base.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    ref_keys = keyspace(base.model_copy(update={"namespace": "ref"}))
    try:
        watermark = {p: int(str(client.hget(ref_keys.partition_meta(p), "watermark"))) for p in range(2)}
    finally:
        client.close()

    def data(topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(r.value)["data"] for r in asyncio.run(read_topic(live, topic))]

    def until_watermark(t: dict[str, Any]) -> bool:
        at = datetime.fromisoformat(t["effective_at"].replace("Z", "+00:00"))
        return at.timestamp() * 1_000_000 <= watermark[partition_for(t["customer_id"], 2)]

    replayed = {t["id"] for t in data(emit)}
    published = {t["id"] for t in data(live.transitions_topic) if until_watermark(t)}
    assert replayed, "the log must produce transitions"
    assert any(t["cause"] == "time" for t in data(emit)), "the log must include time-driven moves"
    assert published == replayed
