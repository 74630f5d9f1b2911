"""What a rebalance costs a consumer group under a steady load, read off a timeline of applied offsets.

Why a timeline of the offsets in Redis and not the workers' logs: the offset stored with the state is the
group's committed progress (a batch counts once its state is written), it is the same for every worker
version, and sampling it costs the workers nothing. Each sample holds the events produced so far (acked by
the broker) and the applied count of every partition; from them, for one trigger (a worker joins, leaves
gracefully, or is killed) at `t0`:

- *group pause*: the longest time no partition committed anything (a stop-the-world rebalance);
- *partition pause*: the longest time one partition committed nothing (a killed worker's partitions wait
  for the session timeout while the others go on);
- *recovery*: the time from `t0` until the lag (produced - applied) is back to what it was before the
  trigger, for good: the last sample above `1.1 x` the lag's 95th percentile over the `baseline_s` before
  `t0`, plus 0.1 s of production (the lag of a healthy group at a steady rate jitters by about a batch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Cost", "Sample", "cost", "settled", "threshold"]


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    produced: int  # events on the topic, acked (the backlog before the steady load included)
    applied: tuple[int, ...]  # events applied per partition (stored offset + 1)

    @property
    def lag(self) -> int:
        return self.produced - sum(self.applied)


@dataclass(frozen=True)
class Cost:
    """One trigger's cost; times in seconds from the trigger (recovery) or durations (pauses)."""

    group_pause: float
    partition_pause: float
    recovery: float
    rate_before: float  # events/s applied over the baseline window
    lag_before: float  # the lag's 95th percentile over the baseline window
    peak_lag: int

    def to_json(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in self.__dataclass_fields__}


def _p95(values: Sequence[int]) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]) if ordered else 0.0


def _before(samples: Sequence[Sample], t0: float, baseline_s: float) -> list[Sample]:
    return [s for s in samples if t0 - baseline_s <= s.at <= t0]


def threshold(samples: Sequence[Sample], t0: float, rate: float, baseline_s: float = 3.0) -> float:
    """The lag above which the group is not back to normal (see the module docstring)."""
    return 1.1 * _p95([s.lag for s in _before(samples, t0, baseline_s)]) + 0.1 * rate


def settled(samples: Sequence[Sample], t0: float, limit: float, hold_s: float) -> bool:
    """Online stop rule: the lag has stayed at or under `limit` for the last `hold_s` seconds after `t0`."""
    after = [s for s in samples if s.at > t0]
    if not after or after[-1].at - t0 < hold_s:
        return False
    recent = [s for s in after if s.at >= after[-1].at - hold_s]
    return all(s.lag <= limit for s in recent)


def _longest_gap(times: Sequence[float], values: Sequence[int], t0: float, end: float) -> float:
    """Longest interval in [t0, end] over which `values` did not increase (sampled at `times`)."""
    longest, since = 0.0, t0
    for i in range(1, len(times)):
        if times[i] <= t0:
            continue
        if values[i] > values[i - 1]:
            longest = max(longest, times[i - 1] - since)  # progress showed at times[i]: a lower bound
            since = times[i]
    return max(longest, end - since)


def cost(samples: Sequence[Sample], t0: float, rate: float, baseline_s: float = 3.0) -> Cost:
    """The cost of the trigger at `t0`, from the samples around it (up to the end of its observation)."""
    window = [s for s in samples if s.at >= t0 - baseline_s]
    before = _before(window, t0, baseline_s)
    after = [s for s in window if s.at > t0]
    limit = threshold(window, t0, rate, baseline_s)
    applied_rate = 0.0
    if len(before) >= 2 and before[-1].at > before[0].at:
        applied_rate = (sum(before[-1].applied) - sum(before[0].applied)) / (before[-1].at - before[0].at)
    end = window[-1].at if window else t0
    times = [s.at for s in window]
    group = _longest_gap(times, [sum(s.applied) for s in window], t0, end)
    partitions = len(window[0].applied) if window else 0
    partition = max(
        (_longest_gap(times, [s.applied[p] for s in window], t0, end) for p in range(partitions)), default=0.0
    )
    above = [s.at for s in after if s.lag > limit]
    return Cost(
        group_pause=group,
        partition_pause=partition,
        recovery=(above[-1] - t0) if above else 0.0,
        rate_before=applied_rate,
        lag_before=_p95([s.lag for s in before]),
        peak_lag=max((s.lag for s in after), default=0),
    )
