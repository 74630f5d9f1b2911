"""`replay kafka:TOPIC` of a topic written by a transactional producer (Kafka Streams, Flink, Debezium with
exactly-once, an outbox relay): a transaction's commit or abort marker takes an offset that holds no record,
and a read_committed consumer never gets an aborted transaction's records. The replay must end on such a
topic like on any other, with the namespace the committed records give (found in review, 6 December 2026: a
partition whose last fetch held only markers or aborted records was polled forever, the replay never ended
and the namespace stayed marked as being built)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from streams.bootstrap import ensure_topics
from streams.replay import sources
from streams.replay.sources import KafkaSource
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.partitioning import partition_for
from tests.integration.replay_helpers import customers_of, dump_namespace, replay_file
from tests.integration.worker_harness import applied_offsets, make_settings
from tests.services import Services


async def produce_in_transactions(
    settings: Settings, committed: Sequence[bytes], per_transaction: int, aborted: Sequence[bytes] = ()
) -> None:
    """The `committed` lines, keyed and partitioned by customer id in file order, `per_transaction` to a
    transaction (each leaves a marker after its records in every partition it wrote), then the `aborted`
    lines in one transaction that is aborted."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        transactional_id=f"{settings.events_topic}-tx",
        enable_idempotence=True,
        acks="all",
    )
    await producer.start()
    try:
        for start in range(0, len(committed), per_transaction):
            async with producer.transaction():
                for line in committed[start : start + per_transaction]:
                    await _send(producer, settings, line)
        if aborted:
            await producer.begin_transaction()
            for line in aborted:
                await _send(producer, settings, line)
            await producer.abort_transaction()
    finally:
        await producer.stop()


async def _send(producer: AIOKafkaProducer, settings: Settings, line: bytes) -> None:
    cid = sample.recover_customer_id(line)
    assert cid is not None
    partition = partition_for(cid, settings.topic_partitions)
    await producer.send(settings.events_topic, line, key=cid.encode(), partition=partition)


def _replay_topic(settings: Settings, path: Path, namespace: str, out: Path) -> Any:
    async def run() -> Any:
        source = KafkaSource(settings.events_topic, None, settings)
        replayed = replay_file(settings, path, namespace, out, source=source)
        return await asyncio.wait_for(replayed, timeout=60)  # it used to poll forever

    return asyncio.run(run())


def _states(dump: dict[str, Any]) -> dict[str, Any]:
    """Customer hashes without `_offset` (the markers take offsets in the topic, not in the file)."""
    return {k: {f: v for f, v in row.items() if f != "_offset"} for k, row in customers_of(dump).items()}


def test_a_partition_that_holds_only_an_aborted_transaction_ends_the_replay(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=40, days=120, seed=5), path)
    lines = [x for x in path.read_bytes().splitlines() if x.strip()]
    home = [partition_for(sample.recover_customer_id(x) or "", 2) for x in lines]
    kept = [x for x, p in zip(lines, home, strict=True) if p == 0]
    failed = [x for x, p in zip(lines, home, strict=True) if p == 1][:20]
    # partition 1 got one transaction, which its producer aborted: none of its records is in the log
    asyncio.run(produce_in_transactions(settings, kept, 100, aborted=failed))
    path.write_bytes(b"\n".join(kept) + b"\n")

    summary = _replay_topic(settings, path, "from-topic", tmp_path)
    assert summary.events == len(kept)
    asyncio.run(replay_file(settings, path, "from-file", tmp_path))
    assert _states(dump_namespace(settings, "from-topic")) == _states(dump_namespace(settings, "from-file"))


def test_a_fetch_that_ends_on_a_commit_marker_ends_the_replay(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A poll's `max_records` that stops right after a partition's last record leaves its commit marker for
    the next poll, which returns no record for it: forced here by a chunk the size of the log (it happens
    wherever a chunk boundary meets the last record of a partition)."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1)
    path = tmp_path / "events.jsonl"
    total = sample.write_jsonl(sample.SampleSpec(customers=30, days=90, seed=11), path)
    lines = [x for x in path.read_bytes().splitlines() if x.strip()]
    asyncio.run(produce_in_transactions(settings, lines, 150))
    monkeypatch.setattr(sources, "CHUNK", total)

    summary = _replay_topic(settings, path, "from-topic", tmp_path)
    assert summary.events == total
    asyncio.run(replay_file(settings, path, "from-file", tmp_path))
    assert _states(dump_namespace(settings, "from-topic")) == _states(dump_namespace(settings, "from-file"))
    in_ns = settings.model_copy(update={"namespace": "from-topic"})
    assert applied_offsets(in_ns)[0] is not None
