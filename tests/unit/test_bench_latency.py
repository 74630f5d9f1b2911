"""The latency benchmark's arithmetic: which event a transition answers, what is left out, what a
percentile is. A wrong match or an off-by-one rank would report latencies nobody had."""

from __future__ import annotations

import argparse
import itertools

import orjson
import pytest

from benchmarks.bench_latency import Matcher, live_events, percentile, variant, worker_counters
from segmentation import parse_event


def test_percentile_is_the_nearest_rank_of_measured_values() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_an_event_counts_once_from_its_first_transition_and_warm_up_events_not_at_all() -> None:
    m = Matcher(measured_from=100.0)
    m.produced("warm", 99.0)  # sent during the warm-up
    m.produced("e1", 100.0)
    m.produced("e2", 101.0)
    m.arrived("t-warm", "warm", 100.5)
    m.arrived("t1a", "e1", 100.010)
    m.arrived("t1b", "e1", 100.050)  # same event, another grid: not a second sample
    m.arrived("t-time", "time", 100.2)  # time-driven: caused by no event sent
    m.arrived("t2", "e2", 101.250)
    m.arrived("t2", "e2", 101.900)  # the same transition again: a redelivery
    assert sorted(round(v, 6) for v in m.latencies) == [0.01, 0.25]
    summary = m.summary()
    assert summary["events"] == 2
    assert summary["duplicates"] == 1
    assert round(summary["p50"], 3) == 10.0  # milliseconds
    assert round(summary["p99"], 3) == 250.0
    assert round(summary["max"], 3) == 250.0


def test_nothing_matched_gives_counts_without_percentiles() -> None:
    assert Matcher().summary() == {"events": 0.0, "duplicates": 0.0}


def test_live_events_are_valid_keyed_and_dated_at_their_planned_send_time() -> None:
    events = list(itertools.islice(live_events(50, rate=10.0, start=1_800_000_000.0), 50))
    assert len(events) == 50
    for i, (key, event_id, line) in enumerate(events):
        event = parse_event(line)
        assert key == event.customer_id.encode()
        assert event_id == event.event_id
        assert event.occurred_at.timestamp() == int(1_800_000_000 + i / 10)
    assert len({event_id for _, event_id, _ in events}) == 50
    assert orjson.loads(events[0][2])["occurred_at"] == "2027-01-15T08:00:00Z"


def test_variants_name_settings_fields_only() -> None:
    assert variant("batch_max_events=500,kafka_fetch_max_wait_ms=10") == {
        "batch_max_events": 500,
        "kafka_fetch_max_wait_ms": 10,
    }
    with pytest.raises(argparse.ArgumentTypeError, match="unknown setting"):
        variant("batch_size=500")
    with pytest.raises(argparse.ArgumentTypeError, match="kafka_fetch_min_bytes"):
        variant("kafka_fetch_min_bytes=0")


def test_reclaims_and_batch_size_sum_the_counters_of_every_worker() -> None:
    metrics: dict[bytes | str, bytes | str] = {
        b"w:h-1:events": b"900",
        b"w:h-1:batches": b"30",
        "w:h-2:events": "300",
        "w:h-2:batches": "10",
        b"r:h-1:rewound": b"3",
        "r:h-2:fenced": "2",
        b"r:h-1:load states": b"7",
        b"lag:0": b"12",
    }
    assert worker_counters(metrics) == {"refused": 5.0, "batch": 30.0}
    assert worker_counters({}) == {"refused": 0.0, "batch": 0.0}
