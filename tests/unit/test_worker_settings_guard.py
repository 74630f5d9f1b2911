"""Workers of one namespace must write alike: what each reports of its settings, and what a starting worker
finds different (streams/worker/mode_guard.py)."""

from __future__ import annotations

from streams.settings import Settings
from streams.store.counters import Metrics
from streams.store.metrics_hash import running_values, worker_fields
from streams.worker.mode_guard import _differences, applied_settings


def test_the_settings_that_change_what_a_worker_writes_are_reported() -> None:
    live = Settings(transitions_topic="moves", history_size=32, max_future_skew_s=3600)
    assert applied_settings(live) == (
        "SEGSTREAM_DLQ_MAX_VALUE_BYTES=900000 SEGSTREAM_DLQ_TOPIC=customer-events.dlq "
        "SEGSTREAM_HISTORY_SIZE=32 SEGSTREAM_MAX_FUTURE_SKEW_S=3600 SEGSTREAM_TRANSITIONS_TOPIC=moves"
    )
    replay = live.model_copy(update={"mode": "replay", "max_future_skew_s": 60})
    assert "SKEW" not in applied_settings(replay)  # replay dead-letters nothing by the wall clock
    tuned = live.model_copy(update={"batch_max_events": 10, "state_cache_size": 0, "sweep_interval_ms": 50})
    assert applied_settings(tuned) == applied_settings(live)  # how fast, not what it writes


def test_a_worker_is_told_each_setting_its_peers_have_otherwise() -> None:
    theirs = applied_settings(Settings(transitions_topic="moves", history_size=32))
    ours = applied_settings(Settings(history_size=64))
    assert _differences(theirs, ours) == ["SEGSTREAM_HISTORY_SIZE=32", "SEGSTREAM_TRANSITIONS_TOPIC=moves"]
    assert _differences(theirs, theirs) == []
    assert _differences(theirs, "") == theirs.split()  # a setting we do not give at all differs too


def test_only_running_workers_settings_count() -> None:
    report = worker_fields(Metrics(), 0, None, "live", "SEGSTREAM_HISTORY_SIZE=32")
    row = {k: str(v) for k, v in report.items()}
    at = float(row[next(k for k in row if k.endswith(":updated_at"))])
    (worker,) = running_values(row, at + 1, "applies")
    assert running_values(row, at + 1, "applies")[worker] == "SEGSTREAM_HISTORY_SIZE=32"
    assert running_values(row, at + 1, "mode") == {worker: "live"}
    assert running_values(row, at + 60, "applies") == {}  # gone quiet: crashed or stopped
    assert running_values({k: v for k, v in row.items() if not k.endswith(":applies")}, at, "applies") == {}
