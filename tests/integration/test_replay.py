"""Replay determinism: file replay == live worker over Kafka (hashes, offsets, transition ids), the same file
twice gives identical namespaces, a Kafka-topic replay equals both, and namespace admin works."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from segmentation.instants import parse_iso
from streams import cli
from streams.bootstrap import ensure_topics
from streams.replay.sources import KafkaSource
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.history_format import FIELD, decode
from streams.store.namespaces import NamespaceError, drop, list_namespaces, prepare_namespace, promote
from streams.store.partitioning import partition_for
from tests.integration.replay_helpers import (
    batch_independent,
    customers_of,
    dump_namespace,
    replay_file,
    replay_split_file,
)
from tests.integration.test_worker_kill import caught_up, end_offsets
from tests.integration.worker_harness import make_settings, read_topic, run_worker_until
from tests.services import Services


async def produce_like_the_file(settings: Settings, lines: list[bytes]) -> None:
    """Each line to partition_for(customer id) (partition 0 without one), in file order."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        futures = []
        for line in lines:
            cid = sample.recover_customer_id(line)
            p = 0 if cid is None else partition_for(cid, settings.topic_partitions)
            key = None if cid is None else cid.encode()
            futures.append(await producer.send(settings.events_topic, line, key=key, partition=p))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def ids(records: list[Any]) -> list[str]:
    return [orjson.loads(r.value)["id"] for r in records]


def test_file_replay_equals_live_worker_and_itself(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    spec = sample.SampleSpec(customers=200, days=365, seed=23, malformed_share=0.01)
    path = tmp_path / "events.jsonl.gz"
    total = sample.write_jsonl(spec, path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=4, batch_max_events=500)
    emit_a = topic_name("replay-a-transitions")

    # two replays of the same file (different batch sizes), one emitting its transitions
    a = asyncio.run(replay_file(settings, path, "ra", tmp_path, emit=emit_a, batch=2000))
    b = asyncio.run(replay_file(settings, path, "rb", tmp_path, batch=700))
    assert a.events == b.events == total
    assert a.dead_letters == b.dead_letters > 0
    assert a.transitions == b.transitions
    dump_a, dump_b = dump_namespace(settings, "ra"), dump_namespace(settings, "rb")
    assert dump_a == dump_b, "two replays of one file give identical namespaces"
    rejects = [orjson.loads(x) for x in (tmp_path / "ra.rejects.jsonl").read_bytes().splitlines()]
    assert len(rejects) == a.dead_letters and all(r["line"] >= 1 and r["error"] for r in rejects)

    # the same lines through Kafka and the live worker (replay mode: the clock is the watermark)
    live = settings.model_copy(update={"namespace": "live"})
    lines = [x for x in __import__("gzip").decompress(path.read_bytes()).splitlines() if x.strip()]
    asyncio.run(produce_like_the_file(live, lines))
    ends = end_offsets(live)
    assert sum(ends.values()) == total
    asyncio.run(run_worker_until(live, caught_up(live, ends), timeout=180))
    dump_live = dump_namespace(live, "live")
    assert customers_of(dump_live) == customers_of(dump_a), "customer hashes byte-identical, _offset included"
    for p in range(4):
        tag = f"{{{settings.events_topic}:{p}}}"
        meta_live, meta_replay = dump_live[f"{tag}:meta"], dump_a[f"{tag}:meta"]
        assert {k: meta_live[k] for k in ("offset", "watermark")} == {
            k: meta_replay[k] for k in ("offset", "watermark")
        }
        due_keys = (f"{tag}:due", f"{tag}:q:")  # the due index: chunk heads and chunks
        assert {k: v for k, v in dump_live.items() if k.startswith(due_keys)} == {
            k: v for k, v in dump_a.items() if k.startswith(due_keys)
        }

    live_ids = ids(asyncio.run(read_topic(live, live.transitions_topic)))
    emitted = asyncio.run(read_topic(live, emit_a))
    replay_ids = ids(emitted)
    assert len(replay_ids) == len(set(replay_ids)) == sum(a.transitions.values())
    assert set(live_ids) == set(replay_ids)
    # each replayed customer's history field: its emitted transitions since its last erasure, the last 64
    # (settings.history_size), with their exact ids, causes and instants
    since: dict[str, list[dict[str, Any]]] = {}
    for record in emitted:
        event = orjson.loads(record.value)
        moves = since.setdefault(event["subject"], [])
        if event["data"]["to_segment"] is None:  # an erasure: the history starts afresh
            moves.clear()
        else:
            moves.append(event["data"])
    trimmed = 0
    for key, row in customers_of(dump_a).items():
        cid = key.split(":c:", 1)[1]
        entries, cut = decode(row[FIELD])
        want = since[cid][-settings.history_size :]
        assert cut == (len(since[cid]) > settings.history_size), cid
        trimmed += cut
        assert [(e.transition_id(cid), e.grid, e.from_segment, e.to_segment, e.cause) for e in entries] == [
            (t["id"], t["grid"], t["from_segment"], t["to_segment"], t["cause"]) for t in want
        ], cid
        assert [e.effective_at for e in entries] == [parse_iso(t["effective_at"]) for t in want], cid
    assert trimmed > 0, "some histories must reach the cap"

    # the Kafka topic itself as the replay source gives the same namespace again
    source = KafkaSource(live.events_topic, None, live)
    k = asyncio.run(replay_file(settings, path, "rk", tmp_path, source=source))
    assert k.events == total
    assert customers_of(dump_namespace(settings, "rk")) == customers_of(dump_a)

    # ... and so does the topic split across two processes (each consuming its own partitions)
    k2 = asyncio.run(replay_split_file(settings, path, "rk2", tmp_path, processes=2, topic=live.events_topic))
    assert (k2.events, k2.dead_letters, k2.transitions) == (total, a.dead_letters, a.transitions)
    assert customers_of(dump_namespace(settings, "rk2")) == customers_of(dump_a)


@pytest.mark.cluster
def test_replay_split_across_processes_equals_one_process(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = sample.SampleSpec(customers=250, days=365, seed=31, malformed_share=0.01)
    path = tmp_path / "events.jsonl.gz"
    total = sample.write_jsonl(spec, path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=4)
    one = asyncio.run(replay_file(settings, path, "one", tmp_path, batch=700))
    split = asyncio.run(replay_split_file(settings, path, "three", tmp_path, processes=3, batch=500))
    assert split.events == one.events == total
    assert (split.dead_letters, split.customers, split.transitions) == (
        one.dead_letters,
        one.customers,
        one.transitions,
    )
    assert split.dead_letters > 0 and split.extra["processes"] == 3
    assert dump_namespace(settings, "three") == dump_namespace(settings, "one"), "key for key"
    merged = (tmp_path / "three.rejects.jsonl").read_bytes()
    assert merged == (tmp_path / "one.rejects.jsonl").read_bytes(), "one rejects file, in line order"
    assert not list(tmp_path.glob("three.rejects.jsonl.part*"))

    # the command line: --processes 2 (default batch size) gives the same state again
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    argv = ["replay", str(path), "--namespace", "two", "--processes", "2", "--out-dir", str(tmp_path)]
    assert cli.main([*argv, "--no-progress"]) == 0
    two, reference = dump_namespace(settings, "two"), dump_namespace(settings, "one")
    assert customers_of(two) == customers_of(reference)
    assert batch_independent(two) == batch_independent(reference)
    summary = orjson.loads((tmp_path / "replay-two.summary.json").read_bytes())
    assert summary["events"] == total and summary["extra"]["processes"] == 2


@pytest.mark.cluster
def test_namespace_admin(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    spec = sample.SampleSpec(customers=30, days=60, seed=3)
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(spec, path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    prefix = settings.key_prefix
    summary = asyncio.run(replay_file(settings, path, "n1", tmp_path))

    async def scenario() -> None:
        client = async_client(settings.redis_url)
        try:
            with pytest.raises(NamespaceError, match="not empty"):
                await prepare_namespace(client, prefix, "n1", force=False)
            with pytest.raises(NamespaceError, match="no keys"):
                await promote(client, prefix, "nothing-here")
            with pytest.raises(NamespaceError, match="invalid"):
                await promote(client, prefix, "bad:name")
            assert await promote(client, prefix, "n1") is None
            infos = {i.name: i for i in await list_namespaces(client, prefix)}
            assert infos["n1"].active and infos["n1"].customers == summary.customers
            assert (infos["n1"].memory_bytes or 0) > 0
            with pytest.raises(NamespaceError, match="active"):
                await drop(client, prefix, "n1")
            await promote(client, prefix, "main", require_keys=False)
            assert await drop(client, prefix, "n1") == infos["n1"].keys
            assert "n1" not in {i.name for i in await list_namespaces(client, prefix)}
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_a_replay_counts_the_duplicates_it_skips(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """Lines whose event id was applied already (an export that overlaps the previous one) have no effect and
    are counted in the summary."""
    visit = {"type": "web_visit", "occurred_at": "2026-03-01T10:00:00Z", "schema_version": 1}
    lines = [{**visit, "event_id": f"v{n}", "customer_id": f"c{n % 5}"} for n in range(20)]
    path = tmp_path / "overlap.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in [*lines, *lines[12:], lines[3]]) + b"\n")
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=4)
    one = asyncio.run(replay_file(settings, path, "dup-one", tmp_path))
    assert (one.events, one.duplicates, one.dead_letters) == (29, 9, 0)
    line = r"^  duplicates +9  \(applied already, or before an erasure: no effect\)$"
    assert re.search(line, one.text(), re.M)
