"""A replay's customers do not depend on the partition count, the batch size or the processes (every
partition is swept to the end of the whole log), and `--until` brings everyone to a later instant."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from segmentation import CustomerState, Definitions, advance
from segmentation.state_mapping import state_from_mapping
from streams import cli
from streams.read import SegmentAt, SegmentReader
from streams.replay.sources import Chunk, FileSource, assign
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import async_client, sync_client
from streams.store.replies import texts
from tests.integration.replay_helpers import by_customer, dump_namespace, replay_file, replay_split_file
from tests.integration.worker_harness import make_settings
from tests.services import Services
from tests.unit.seg_helpers import definitions_with

SPEC = sample.SampleSpec(customers=300, days=540, seed=41, malformed_share=0.01, erasure_share=0.02)


def _log(tmp_path: Path) -> tuple[Path, int]:
    path = tmp_path / "events.jsonl.gz"
    return path, sample.write_jsonl(SPEC, path)


@pytest.mark.cluster
def test_same_customers_whatever_the_partitions_batch_and_processes(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    path, total = _log(tmp_path)
    runs: dict[str, Any] = {}
    for name, partitions, batch, processes in (("p1", 1, 2000, 1), ("p2", 2, 500, 1), ("p7", 7, 300, 3)):
        settings = make_settings(services, topic_name, redis_prefix, topic_partitions=partitions)
        if processes == 1:
            summary = asyncio.run(replay_file(settings, path, name, tmp_path, batch=batch))
        else:
            summary = asyncio.run(replay_split_file(settings, path, name, tmp_path, processes, batch=batch))
        assert summary.events == total
        runs[name] = (summary, by_customer(dump_namespace(settings, name)))
    (one, customers), *others = runs.values()
    assert len([k for k in customers if k.startswith("c:")]) > 250
    for summary, other in others:
        assert (summary.transitions, summary.customers, summary.dead_letters) == (
            one.transitions,
            one.customers,
            one.dead_letters,
        )
        assert other == customers, "customer hashes and histories identical, field for field"


def _late_log(tmp_path: Path) -> tuple[Path, int]:
    """The sample log with every 20th purchase moved ~a fifth of the file later: late rows, as in an export
    whose refunds or corrections come after later days, so a partition's watermark passes their dates."""
    lines = [line for line in gzip.decompress(_log(tmp_path)[0].read_bytes()).splitlines() if line]
    moved = {i for i, line in enumerate(lines) if b'"purchase"' in line and i % 20 == 0}
    shift = len(lines) // 5
    late: dict[int, list[bytes]] = {}
    for i in moved:
        late.setdefault(min(i + shift, len(lines) - 1), []).append(lines[i])
    out = [x for i, line in enumerate(lines) for x in ([] if i in moved else [line]) + late.get(i, [])]
    # and quiet customers: one purchase early on, the next (dated 80 days later) only near the end of the
    # file, long after their partition's watermark passed the day they were due at_risk
    template = orjson.loads(next(line for line in lines if b'"purchase"' in line))
    start = datetime.fromisoformat(orjson.loads(lines[0])["occurred_at"])
    for n in range(24):
        for k, (at, position) in enumerate(((start, 1), (start + timedelta(days=80), len(out) - 2))):
            event = {**template, "customer_id": f"quiet-{n}", "event_id": f"quiet-{n}-{k}"}
            event.update(order_id=f"q{n}-{k}", occurred_at=at.isoformat())
            out.insert(position, orjson.dumps(event))
    path = tmp_path / "late.jsonl"
    path.write_bytes(b"\n".join(out) + b"\n")
    assert len(moved) > 50 and len(out) == len(lines) + 48
    return path, len(out)


class SmallChunks(FileSource):
    """The file in chunks of 50 lines instead of 10,000: a small test file still makes many flushes."""

    async def chunks(self, topic: str, owned: Collection[int] | None = None) -> AsyncIterator[Chunk]:
        for chunk in assign(self.keyed(), self.partitions, topic, owned, chunk=50):
            yield chunk


def test_late_rows_give_the_same_customers_whatever_the_partitions_batch_and_processes(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """Rows dated before their partition's watermark: applied as late only against their own customer's
    clock, never against a sweep that happened to run at some flush (which depended on --batch)."""
    path, total = _late_log(tmp_path)
    runs: dict[str, Any] = {}
    configs = (("one", 1, 100_000, 1), ("p5", 5, 60, 1), ("p7", 7, 300, 2))
    for name, partitions, batch, processes in configs:
        settings = make_settings(services, topic_name, redis_prefix, topic_partitions=partitions)
        if processes == 1:  # small chunks: many flushes (a sweep ran every 8 of them up to 5 December)
            source = SmallChunks(path, partitions) if batch < 1000 else None
            summary = asyncio.run(replay_file(settings, path, name, tmp_path, batch=batch, source=source))
        else:
            summary = asyncio.run(replay_split_file(settings, path, name, tmp_path, processes, batch=batch))
        assert summary.events == total
        runs[name] = (summary, by_customer(dump_namespace(settings, name)))
    (one, customers), *others = runs.values()
    for summary, other in others:
        assert (summary.transitions, summary.dead_letters) == (one.transitions, one.dead_letters)
        assert other == customers, "customer hashes and histories identical, field for field"


def _states(settings: Settings, namespace: str) -> dict[str, CustomerState]:
    client = sync_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    try:
        return {
            str(key).split(":c:", 1)[1]: state_from_mapping(texts(client.hgetall(key)))
            for key in client.scan_iter(match=f"{settings.key_prefix}:{namespace}:*:c:*", count=1000)
        }
    finally:
        client.close()


def _swept(state: CustomerState, until: datetime, definitions: Definitions) -> CustomerState:
    """The worker's sweep of one customer: through each due instant at or before `until` (advance_all)."""
    while state.next_due_at is not None and state.next_due_at <= until:
        state = advance(state, state.next_due_at, definitions).state
    return state


def test_until_brings_everyone_to_that_instant(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, _ = _log(tmp_path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    asyncio.run(replay_file(settings, path, "end", tmp_path))
    at_end = _states(settings, "end")
    last = max(s.clock for s in at_end.values() if s.clock is not None)
    until = last + timedelta(days=200)
    later = asyncio.run(replay_split_file(settings, path, "later", tmp_path, processes=2, until=until))
    defaults = Definitions.default()
    expected = {cid: _swept(state, until, defaults) for cid, state in at_end.items()}
    assert _states(settings, "later") == expected
    assert sum(later.transitions.values()) > sum(
        asyncio.run(replay_file(settings, path, "again", tmp_path)).transitions.values()
    ), "the 200 days after the log's end moved some customers"

    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    base = ["replay", str(path), "--out-dir", str(tmp_path), "--no-progress"]
    capsys.readouterr()
    assert cli.main([*base, "--namespace", "naive", "--until", "2030-01-01T00:00:00"]) == 2
    assert "no UTC offset" in capsys.readouterr().err
    early = (last - timedelta(days=30)).isoformat()
    assert cli.main([*base, "--namespace", "early", "--until", early]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--until {early} is before the log's event at" in err
    assert cli.main([*base, "--namespace", "cli-until", "--until", until.isoformat()]) == 0
    assert _states(settings, "cli-until") == expected


def _line(event_id: str, customer: str, day: int) -> bytes:
    at = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)).isoformat()
    return orjson.dumps(
        {"event_id": event_id, "customer_id": customer, "occurred_at": at, "schema_version": 1,
         "type": "purchase", "order_id": event_id, "amount": "20.00", "currency": "EUR", "channel": "web"}
    )  # fmt: skip


def test_as_of_beyond_the_clock_is_projected_never_stale(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """bob bought on day 200, the log's end: his clock is day 200, and by day 250 time made him `active`
    (day 230). The history alone still says `new`; the reader advances his state instead, and its answer is
    the move a replay swept to day 250 records, id included."""
    path = tmp_path / "two.jsonl"
    path.write_bytes(_line("a1", "alice", 0) + b"\n" + _line("b1", "bob", 200) + b"\n")
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1, namespace="asof")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def day(n: int) -> timedelta:
        return timedelta(days=n)

    asyncio.run(replay_file(settings, path, "asof", tmp_path))
    asyncio.run(replay_file(settings, path, "swept", tmp_path, until=t0 + day(250)))

    async def answers() -> list[SegmentAt]:
        client = async_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
        reader = SegmentReader(client, settings)
        other = SegmentReader(client, settings, definitions_with(version="other"))
        swept = SegmentReader(client, settings.model_copy(update={"namespace": "swept"}))
        try:
            return [
                await reader.segment_of("bob", "lifecycle", as_of=t0 + day(250)),
                await reader.segment_of("bob", "lifecycle", as_of=t0 + day(210)),
                await reader.segment_of("bob", "lifecycle", as_of=t0 + day(200)),
                await other.segment_of("bob", "lifecycle", as_of=t0 + day(250)),
                await swept.segment_of("bob", "lifecycle", as_of=t0 + day(250)),
            ]
        finally:
            await client.aclose()

    beyond, before_move, at_clock, without_definitions, recorded = asyncio.run(answers())
    assert (beyond.status, beyond.segment, beyond.since) == ("projected", "active", t0 + day(230))
    # swept, bob's clock is his due instant (day 230): beyond it, no move, the history's entry is kept
    assert (recorded.status, recorded.segment, recorded.since) == ("projected", "active", t0 + day(230))
    assert beyond.transition_id == recorded.transition_id and beyond.why == recorded.why
    assert (before_move.status, before_move.segment, before_move.since) == ("projected", "new", t0 + day(200))
    assert before_move.transition_id == at_clock.transition_id
    assert (at_clock.status, at_clock.segment) == ("known", "new")
    assert (without_definitions.status, without_definitions.segment) == ("beyond_clock", None)
