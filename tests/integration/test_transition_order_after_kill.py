"""What a consumer of the transitions topic sees across kill -9 and restart, the transitions topic having
another partition count than the events topic: deduplicated by id, exactly the clean run's transitions, each
(customer, grid) chain continuous and each customer's moves in effective order."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.sample import generator as sample
from tests.integration.test_worker_kill import caught_up, end_offsets, start_worker
from tests.integration.worker_harness import applied_offsets, make_settings, read_topic, run_worker_until
from tests.services import Services


def _deduplicated(records: list[Any]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        data = orjson.loads(r.value)["data"]
        assert r.key == data["customer_id"].encode()
        if data["id"] not in seen:
            seen.add(data["id"])
            out.append(data)
    return out


def _broken_chains(stream: list[dict[str, Any]]) -> list[str]:
    last: dict[tuple[str, str], str | None] = {}
    at: dict[str, str] = {}
    broken = []
    for t in stream:
        key = (t["customer_id"], t["grid"])
        if last.get(key) != t["from_segment"]:
            broken.append(f"chain {key}: {last.get(key)} then {t['from_segment']}->{t['to_segment']}")
        last[key] = t["to_segment"]
        if t["effective_at"] < at.get(t["customer_id"], ""):
            broken.append(f"order {t['customer_id']}: {t['effective_at']} after {at[t['customer_id']]}")
        at[t["customer_id"]] = max(at.get(t["customer_id"], ""), t["effective_at"])
    return broken


def test_kill_9_twice_the_deduplicated_stream_is_the_clean_one(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    spec = sample.SampleSpec(customers=200, days=365, seed=11, malformed_share=0.01)
    clean = make_settings(services, topic_name, redis_prefix + "clean:", topic_partitions=4)
    crashy = clean.model_copy(
        update={
            "key_prefix": redis_prefix + "crashy",
            "group_id": topic_name("crashy-group"),
            "transitions_topic": topic_name("crashy-transitions"),
            "batch_max_events": 150,
        }
    )

    async def feed() -> int:
        from streams.bootstrap import ensure_topics

        admin = AIOKafkaAdminClient(bootstrap_servers=clean.kafka_bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(crashy.transitions_topic, 3, 1)])
        await admin.close()
        await ensure_topics(clean)
        return await sample.produce(spec, clean.kafka_bootstrap, clean.events_topic)

    total = asyncio.run(feed())
    ends = end_offsets(clean)
    asyncio.run(run_worker_until(clean, caught_up(clean, ends), timeout=180))

    worker = start_worker(crashy)
    try:
        for share in (4, 2):
            deadline = time.monotonic() + 120
            while sum((o or 0) for o in applied_offsets(crashy).values()) < total // share:
                assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.02)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(10)
            worker = start_worker(crashy)
        check = caught_up(crashy, ends)
        deadline = time.monotonic() + 180
        while not check():
            assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.2)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    clean_stream = _deduplicated(asyncio.run(read_topic(clean, clean.transitions_topic)))
    crashy_records = asyncio.run(read_topic(crashy, crashy.transitions_topic))
    crashy_stream = _deduplicated(crashy_records)

    assert {t["id"] for t in crashy_stream} == {t["id"] for t in clean_stream}
    assert _broken_chains(clean_stream) == []
    assert _broken_chains(crashy_stream) == []
