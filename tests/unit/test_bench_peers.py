"""The peer comparison's table: medians per job, the peer's total without Redis (it uses none), and the
ratios the issue asks for. A wrong ratio would misstate how segstream compares."""

from __future__ import annotations

from benchmarks.bench_peers import NAIVE, PEER, SEGSTREAM, compare
from benchmarks.bench_worker import Run


def run(rate: float, events: int, cpu: dict[str, float]) -> Run:
    return Run(rate=rate, seconds=events / rate, events=events, cpu=cpu)


def test_medians_totals_and_ratios() -> None:
    runs = {
        SEGSTREAM: [
            run(20_000, 100_000, {"worker": 2.0, "redis": 0.5, "kafka": 0.5}),  # 20 + 5 + 5 us/event
            run(10_000, 100_000, {"worker": 9.0, "redis": 0.5, "kafka": 0.5}),
            run(30_000, 100_000, {"worker": 1.0, "redis": 0.5, "kafka": 0.5}),
        ],
        PEER: [run(5_000, 100_000, {"quix peer": 12.0, "kafka": 3.0})],  # 120 + 30 us/event
        NAIVE: [run(1_000, 10_000, {"naive agent": 10.0, "redis": 4.0, "kafka": 1.0})],  # 1000 + 400 + 100
    }
    lines = compare(runs)
    assert lines[1].split() == ["segstream", "worker", "20,000", "20.0", "5.0", "5.0", "30.0"]
    assert lines[2].split() == ["quixstreams", "peer", "5,000", "120.0", "-", "30.0", "150.0"]
    assert lines[3].split() == ["naive", "Faust", "agent", "1,000", "1000.0", "400.0", "100.0", "1500.0"]
    assert lines[4] == "segstream vs quixstreams peer: 4.0x events/s, 5.0x less CPU per event"
    assert lines[5] == "segstream vs naive Faust agent: 20.0x events/s, 50.0x less CPU per event"


def test_without_segstream_runs_there_are_no_ratios() -> None:
    lines = compare({PEER: [run(5_000, 1_000, {"quix peer": 0.1, "kafka": 0.0})], SEGSTREAM: []})
    assert len(lines) == 2
