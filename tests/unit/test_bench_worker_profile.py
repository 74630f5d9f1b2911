"""The benchmark's CPU breakdown must attribute a stack to the stage that caused it, and find the services'
processes by their port: a wrong attribution would send optimisation work to the wrong place."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from benchmarks.bench_worker import Run, listening_pid
from benchmarks.worker_profile import BOOKKEEPING, Breakdown, stage_of, stage_samples

LOOP = "<module> (streams/cli.py:137);BaseEventLoop._run_once (asyncio/base_events.py:1922)"
PUBLISH_BUILDS_BATCH = (
    "Worker._publish (streams/worker/loop.py:340);publish (streams/topics/publish.py:36);"
    "BatchBuilder.append (aiokafka/record/default_records.py:77)"
)
FETCH = (
    "Worker.run (streams/worker/loop.py:156);"
    "PartitionRecords._consumer_record (aiokafka/consumer/fetcher.py:311)"
)
PARSE = (
    "Worker.submit (streams/worker/loop.py:223);decode (streams/worker/batch.py:78);"
    "_timestamp (segmentation/events.py:140)"
)
DIFF = (
    "apply_steps (streams/worker/batch.py:151);write_for (streams/worker/batch.py:211);"
    "changed_fields (segmentation/state_mapping.py:187)"
)
APPLY = "apply_steps (streams/worker/batch.py:141);apply (segmentation/evolution.py:145)"


def test_produce_wins_over_fetch_for_record_batches_built_by_publish() -> None:
    assert stage_of(f"{LOOP};{PUBLISH_BUILDS_BATCH}".split(";")) == "transition envelopes + Kafka produce"
    assert stage_of(f"{LOOP};{FETCH}".split(";")) == "Kafka fetch + decode"


def test_core_stages_and_the_diff_are_told_apart() -> None:
    assert stage_of(PARSE.split(";")) == "parse_event"
    assert stage_of(DIFF.split(";")) == "state serialisation (changed_fields/to_mapping)"
    assert stage_of(APPLY.split(";")) == "apply (core)"
    assert stage_of(LOOP.split(";")) == BOOKKEEPING


def test_breakdown_scales_sample_shares_to_cpu_per_event(tmp_path: Path) -> None:
    raw = tmp_path / "raw.txt"
    raw.write_text(f"{LOOP};{PARSE} 30\n{APPLY} 60\n{LOOP} 10\n\n")
    assert stage_samples(raw.read_text().splitlines()) == {
        "parse_event": 30,
        "apply (core)": 60,
        BOOKKEEPING: 10,
    }
    lines = Breakdown.read(raw).lines(20.0)
    assert any(line.split()[0] == "parse_event" and "6.00 CPU-us/event" in line for line in lines)
    assert any(line.lstrip().startswith("apply (core)") and "12.00 CPU-us/event" in line for line in lines)
    assert "20.00 CPU-us/event" in lines[-1]


def test_run_gives_cpu_microseconds_per_event() -> None:
    run = Run(rate=50_000.0, seconds=2.0, events=100_000, cpu={"worker": 1.5, "redis": 0.5})
    assert run.per_event("worker") == 15.0
    assert run.per_event("redis") == 5.0
    assert run.per_event("kafka") == 0.0


def test_the_process_listening_on_a_port_is_found() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert listening_pid(server.getsockname()[1]) == os.getpid()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert listening_pid(port) is None


def test_a_baseline_that_can_build_a_compiled_core_but_has_none_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its worker would run the pure-Python core against ours, compiled: a before/after that measures the
    compiler, not the change (found 7 December: a `bench_latency.py --baseline` of an unbuilt checkout)."""
    from benchmarks import bench_worker
    from streams.settings import Settings

    (tmp_path / "streams" / "core").mkdir(parents=True)
    (tmp_path / "streams" / "core" / "build.py").write_text("")
    monkeypatch.setattr(bench_worker, "compiled", lambda: True)
    with pytest.raises(SystemExit, match="has no compiled core of its own: build it first"):
        bench_worker.start_worker(Settings(), tmp_path)
