"""An event dated too far after its record: the live worker's verdict is a function of the log, and
`segstream replay --reject-future` reaches the same verdicts, on the real broker and Redis.

Before (7 December 2026): the live worker held an event to its own wall clock when it read it, so an event
dated two days after it was produced was a dead letter for a worker that kept up and applied by one that
read it three days later; and no replay could reject what live rejected: one line dated 9000 in a replayed
log moved the replay's end to year 9000 and its final sweep sent every customer of the namespace to `lost`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from streams import cli
from streams.settings import Settings
from tests.chaos.compare import dead_letter_origins, rejected_origins
from tests.integration.test_worker_history import purchase
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    run_worker_until,
    stored_customers,
)
from tests.services import Services

NOW = datetime.now(UTC).replace(microsecond=0)
CUSTOMERS = [f"f{n}" for n in range(6)]


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _log() -> list[tuple[bytes, int]]:
    """(event, record time in ms): purchases produced when they happened, one dated two days after it was
    produced (three days ago), and one dated 9000-01-01 produced now."""
    out = []
    for n, cid in enumerate(CUSTOMERS):
        at = NOW - timedelta(days=5, minutes=-n)
        out.append((purchase(f"p{n}", cid, at), _ms(at)))
    produced = NOW - timedelta(days=3)
    out.insert(2, (purchase("late-stamped", CUSTOMERS[0], produced + timedelta(days=2)), _ms(produced)))
    out.insert(4, (purchase("far", CUSTOMERS[1], datetime(9000, 1, 1, tzinfo=UTC)), _ms(NOW)))
    return out


def _replay(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, out: Path, source: str, *flags: str
) -> list[tuple[int, int]]:
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    namespace = f"r{abs(hash((source, flags))) % 10**6}"
    args = ["replay", source, "--namespace", namespace, "--no-progress", "--output-dir", str(out), *flags]
    assert cli.main(args) == 0
    return sorted(rejected_origins(out / f"replay-{namespace}.rejects.jsonl"))


def test_live_dead_letters_are_those_of_a_replay_of_the_topic_with_reject_future(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, mode="live")
    log = _log()
    asyncio.run(produce(settings, [line for line, _ in log], customer_key, [ms for _, ms in log]))

    def all_applied() -> bool:
        return sum((o if o is not None else -1) + 1 for o in applied_offsets(settings).values()) == len(log)

    asyncio.run(run_worker_until(settings, all_applied))
    live = sorted(dead_letter_origins(settings.kafka_bootstrap, settings.dlq_topic))
    assert len(live) == 2, "the late-stamped purchase and the one dated 9000"
    stored = stored_customers(settings)
    assert {cid: row["orders"] for cid, row in stored.items()} == dict.fromkeys(CUSTOMERS, "1")

    topic = f"kafka:{settings.events_topic}"
    assert _replay(settings, monkeypatch, tmp_path, topic, "--reject-future") == live
    assert _replay(settings, monkeypatch, tmp_path, topic, "--reject-future", "--processes", "2") == live
    assert _replay(settings, monkeypatch, tmp_path, topic) == [], "by default the log is applied as it is"


def test_a_file_replay_with_reject_future_keeps_a_line_dated_9000_from_ageing_everyone(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(services, topic_name, redis_prefix)
    path = tmp_path / "orders.jsonl"
    path.write_bytes(b"\n".join(line for line, _ in _log()) + b"\n")

    def lifecycles(namespace: str) -> dict[str, str]:
        rows = stored_customers(settings.model_copy(update={"namespace": namespace}))
        return {cid: row["lifecycle"] for cid, row in rows.items()}

    rejected = _replay(settings, monkeypatch, tmp_path, str(path), "--reject-future")
    namespace = f"r{abs(hash((str(path), ('--reject-future',)))) % 10**6}"
    assert len(rejected) == 1, "the line dated 9000; the late-stamped one is not in the future today"
    (row,) = [
        orjson.loads(x) for x in (tmp_path / f"replay-{namespace}.rejects.jsonl").read_bytes().splitlines()
    ]
    assert row["error_class"] == "streams.worker.batch.TooFarInFuture"
    assert row["error"].endswith(
        ", the replay's start (the record has no time) plus SEGSTREAM_MAX_FUTURE_SKEW_S"
    )
    assert set(lifecycles(namespace).values()) == {"new"}

    assert _replay(settings, monkeypatch, tmp_path, str(path)) == []
    namespace = f"r{abs(hash((str(path), ()))) % 10**6}"
    aged = lifecycles(namespace)  # without the flag the log's end is year 9000: everyone else lost
    assert aged == {**dict.fromkeys(CUSTOMERS, "lost"), CUSTOMERS[1]: "reactivated"}
