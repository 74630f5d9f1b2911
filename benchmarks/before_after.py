"""Before/after tables: medians of each figure over the rounds of two variants, side by side, with ratios.

Why medians of alternate rounds: on a shared 2-core box the load drifts during a run; running old and new
in turn on the same input and comparing medians keeps the drift out of the ratio.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence

__all__ = ["load_average", "side_by_side"]


def load_average() -> str:
    """The 1, 5 and 15-minute load averages, printed with every figure (other work shares the box)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def _median(values: Sequence[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return statistics.median(known) if known else float("nan")


def _cell(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def side_by_side(
    before: Sequence[Mapping[str, float]], after: Sequence[Mapping[str, float]], labels: tuple[str, str]
) -> list[str]:
    """One row per figure (the keys of the first `after` run, in order): median before, median after, and
    after/before. A figure missing from one side prints as `-`."""
    names = list(after[0]) if after else list(before[0])
    width = max(len(name) for name in names) + 2
    out = [f"  {'':{width}}{labels[0]:>14}{labels[1]:>14}{'after/before':>14}"]
    for name in names:
        old = _median([run.get(name, float("nan")) for run in before])
        new = _median([run.get(name, float("nan")) for run in after])
        ratio = new / old if old and not math.isnan(old) and not math.isnan(new) else float("nan")
        ratio_text = f"{ratio:.2f}x" if not math.isnan(ratio) else "-"
        out.append(f"  {name:{width}}{_cell(old):>14}{_cell(new):>14}{ratio_text:>14}")
    return out
