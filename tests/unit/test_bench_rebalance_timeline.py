"""The rebalance cost read off a timeline of applied offsets (benchmarks/rebalance_timeline.py): the pauses
and recovery times docs/capacity.md reports, on timelines whose answer is known."""

from __future__ import annotations

import pytest

from benchmarks.rebalance_timeline import Sample, cost, settled, threshold

RATE = 100.0  # events/s produced, two partitions, one sample every 0.1 s, a steady lag of 10 events


def timeline(stalled: dict[int, range], last: int = 100) -> list[Sample]:
    """Samples i = 0..last at i/10 s; partition p shows no progress at the samples in stalled[p] and is
    caught up again at the next one."""
    samples = []
    for i in range(last + 1):
        produced = 1000 + 10 * i
        normal = (produced - 10) // 2
        applied = tuple(
            (1000 + 10 * (stalled[p].start - 1) - 10) // 2 if i in stalled.get(p, ()) else normal
            for p in range(2)
        )
        samples.append(Sample(i / 10, produced, applied))
    return samples


def test_a_stop_the_world_rebalance_pauses_every_partition_and_recovers_when_the_lag_is_back() -> None:
    samples = timeline({0: range(31, 41), 1: range(31, 41)})  # nothing applied from 3.0 s to 4.0 s
    assert threshold(samples, 3.0, RATE) == pytest.approx(1.1 * 10 + 0.1 * RATE)
    c = cost(samples, 3.0, RATE)
    assert c.group_pause == pytest.approx(1.0)
    assert c.partition_pause == pytest.approx(1.0)
    assert c.recovery == pytest.approx(1.0)  # 4.0 s is the last sample above 21 events of lag
    assert c.rate_before == pytest.approx(RATE)
    assert c.lag_before == 10
    assert c.peak_lag == 110


def test_a_killed_worker_stalls_its_partitions_only() -> None:
    samples = timeline({1: range(31, 131)}, last=160)  # partition 1 waits 10 s (the session timeout)
    c = cost(samples, 3.0, RATE)
    assert c.group_pause == pytest.approx(0.0)  # partition 0 commits all along
    assert c.partition_pause == pytest.approx(10.0)
    assert c.recovery == pytest.approx(10.0)
    assert c.peak_lag == 10 + 500


def test_a_trigger_without_effect_costs_nothing() -> None:
    c = cost(timeline({}), 3.0, RATE)
    assert (c.group_pause, c.partition_pause, c.recovery) == (0.0, 0.0, 0.0)


def test_settled_only_once_the_lag_stayed_normal_for_the_whole_hold() -> None:
    samples = timeline({0: range(31, 41), 1: range(31, 41)})
    limit = threshold(samples, 3.0, RATE)
    assert not settled(samples[:81], 4.0, limit, hold_s=5.0)  # 4 s after the stall ended: not yet
    assert settled(samples, 4.0, limit, hold_s=5.0)
    assert not settled(samples, 3.0, limit, hold_s=7.0)  # the stall is inside the hold
