"""CPU seconds spent by each process of a run (worker, Redis, Kafka), so a figure says where the time went.

On a 2-core machine that also hosts the broker and Redis, events/s is bounded by the *sum* of CPU time every
process spends per event: at 100k events/s the whole box has 20 CPU-microseconds per event. Reading
utime+stime from /proc before and after a run gives each process's share, in CPU-us per event.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process (children excluded), or None when it is gone or /proc is absent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # fields 14 and 15 of stat(5), after "pid (comm)"


def stack_pids() -> dict[str, int]:
    """The local stack's Redis and Kafka pids when it runs (empty when services come from elsewhere)."""
    try:
        from streams import devstack

        st = devstack.status()
    except Exception:  # accounting is best effort, never the reason a benchmark fails
        return {}
    pids = {"redis": st.redis_pid, "kafka": st.kafka_pid}
    return {name: pid for name, pid in pids.items() if pid is not None}


@dataclass
class CpuMeter:
    """Snapshot CPU seconds of named processes at start; `report` gives the difference per process."""

    pids: Mapping[str, int]

    def __post_init__(self) -> None:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def spent(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, pid in self.pids.items():
            before, after = self._start.get(name), cpu_seconds(pid)
            if before is not None and after is not None:
                out[name] = after - before
        return out


def budget_lines(spent: Mapping[str, float], events: int, wall_seconds: float) -> list[str]:
    """CPU-us per event and cores busy per process, plus the total and its ceiling on this box."""
    cores = os.cpu_count() or 1
    lines = []
    total = 0.0
    for name, seconds in spent.items():
        total += seconds
        per_event, busy = seconds * 1e6 / events, seconds / wall_seconds
        lines.append(f"  {name:10} {per_event:8.2f} CPU-us/event   {busy:5.2f} cores busy")
    if events and total:
        ceiling = cores * 1e6 / (total * 1e6 / events)
        lines.append(
            f"  {'total':10} {total * 1e6 / events:8.2f} CPU-us/event   "
            f"=> at most {ceiling:,.0f} events/s on {cores} cores if nothing else ran"
        )
    return lines
