"""Lazy adoption on real Redis ends where `definitions apply` then a sweep ends: the same customers, segments,
due index, membership and counters, and the same transition ids.

Two namespaces are replayed from one log under the default definitions. In one, `definitions apply` moves
every customer to definitions that bring lifecycle changes earlier, then a worker with those definitions
sweeps. In the other, a worker with those definitions adopts the namespace (SEGSTREAM_ADOPT_DEFINITIONS)
and sweeps: before, only the customers the due index named at their old times moved (found in review);
now its first claim walks the partition (`streams/worker/realign.py`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from segmentation import Definitions
from segmentation.transition import Transition
from streams.admin import definitions_change as change
from streams.bootstrap import check_definitions, definitions_record
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.redis_store import RedisStateStore
from streams.worker.batch import BatchResult
from streams.worker.loop import Worker
from tests.integration.replay_helpers import dump_namespace, replay_file
from tests.integration.worker_harness import make_settings
from tests.services import Services
from tests.unit.seg_helpers import definitions_with
from tests.unit.test_worker_follow import Assignment

EARLIER = {"new_for_days": 7, "at_risk_after_days": 45, "lost_after_days": 120, "reactivated_for_days": 10}
PARTITIONS = 2


async def sweep_with(settings: Settings, definitions: Definitions, adopt: bool) -> list[Transition]:
    """A worker with `definitions` started on the namespace as `worker_runtime` starts one, every partition
    assigned to it, then one sweep to each partition's watermark; what it published."""
    client = async_client(settings.redis_url)
    settings = settings.model_copy(update={"adopt_definitions": adopt})
    assert settings.namespace is not None
    try:
        await check_definitions(settings, client, definitions.version)
        keys = KeySpace(settings.key_prefix, settings.namespace, settings.events_topic)
        tps = [TopicPartition(settings.events_topic, p) for p in range(PARTITIONS)]
        worker = Worker(settings, definitions, RedisStateStore(client, keys), None, Assignment(tps))
        worker.recorded = definitions_record(settings, client)
        published: list[Transition] = []

        async def keep(result: BatchResult) -> None:
            published.extend(result.transitions)

        worker._publish = keep  # type: ignore[method-assign]
        await worker.take_all(tps)
        await worker.sweep(force=True)
        return published
    finally:
        await client.aclose()


def comparable(dump: dict[str, Any]) -> dict[str, Any]:
    """Without what records how the namespace got there rather than what it holds: the claims (fence, owner,
    commit count) and the definitions hash (apply keeps the YAML, an adoption the walk's bookkeeping)."""
    out: dict[str, Any] = {}
    for key, value in dump.items():
        if key == "definitions":
            continue
        if key.endswith(":meta"):
            value = {k: v for k, v in value.items() if k not in ("fence", "owner", "seq")}
        out[key] = value
    return out


def test_lazy_adoption_moves_every_customer_as_apply_then_a_sweep_does(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    spec = sample.SampleSpec(customers=120, days=300, seed=23)
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(spec, path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=PARTITIONS)
    new = definitions_with(lifecycle=EARLIER, version="earlier")
    in_ns: Callable[[str], Settings] = lambda ns: settings.model_copy(update={"namespace": ns})  # noqa: E731
    for namespace in ("applied", "adopted"):
        asyncio.run(replay_file(settings, path, namespace, tmp_path))

    async def apply() -> list[Transition]:
        client = async_client(settings.redis_url)
        moved: list[Transition] = []

        async def send(transitions: list[Transition]) -> None:
            moved.extend(transitions)

        try:
            keys = KeySpace(settings.key_prefix, "applied", settings.events_topic)
            await change.apply(client, keys, PARTITIONS, new, send, definitions_yaml="(earlier)")
        finally:
            await client.aclose()
        return moved

    applied = asyncio.run(apply())
    applied += asyncio.run(sweep_with(in_ns("applied"), new, adopt=False))
    adopted = asyncio.run(sweep_with(in_ns("adopted"), new, adopt=True))

    assert len(applied) > 50, "the new definitions move many customers"
    # the moves themselves: workers without a producer (sweep_with) give their transitions no id (NO_ID)
    fields = attrgetter(
        "customer_id", "grid", "from_segment", "to_segment", "effective_at", "cause", "definitions_version",
        "definitions_change",
    )  # fmt: skip
    assert sorted(map(fields, adopted), key=repr) == sorted(map(fields, applied), key=repr)
    assert comparable(dump_namespace(settings, "adopted")) == comparable(dump_namespace(settings, "applied"))
    walked = dump_namespace(settings, "adopted")["definitions"]
    done = {walked.get(f"realigned:{p}") for p in range(PARTITIONS)}
    assert done == {walked["realign"]} and walked["realign"].startswith("earlier "), "each walk recorded done"
