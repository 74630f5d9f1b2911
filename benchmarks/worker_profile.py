"""Where the worker's CPU goes per event: py-spy samples of a running worker, grouped into pipeline stages.

A sampling profiler (not cProfile) because the hot path is millions of tiny calls: cProfile's per-call
overhead inflates exactly those and distorts the shares. py-spy attaches to the worker process from outside
(nothing in the worker changes) and samples whole stacks, which are then attributed to one stage each: the
first stage, in STAGES order, that has a frame in the stack. The order matters: publishing builds Kafka
record batches (aiokafka/record) that must count as produce, not as fetch.

py-spy is not a project dependency: `pip install py-spy` into any environment and pass `--py-spy PATH`
(or have it on PATH); it needs ptrace rights on the worker (root, or kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# stage -> frame patterns ("function (file" prefixes or file fragments), checked in this order
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "transition envelopes + Kafka produce",
        ("Worker._publish ", "streams/topics/publish.py", "streams/topics/envelope.py", "aiokafka/producer/"),
    ),
    (
        "Redis commit (client side)",
        ("RedisStateStore.commit ", "RedisStateStore._index_ops ", "_fields (streams/store/redis_store.py"),
    ),
    ("Redis load of missing states", ("Worker._states ", "RedisStateStore.load ")),
    ("parse_event", ("decode (streams/worker/batch.py", "parse_event ", "segmentation/events.py")),
    (
        "state serialisation (changed_fields/to_mapping)",
        ("write_for ", "changed_fields ", "to_mapping ", "segmentation/state_mapping.py"),
    ),
    ("read-side index deltas", ("_index (streams/worker/batch.py", "streams/store/indexes.py")),
    ("apply (core)", ("segmentation/",)),
    (
        "Kafka fetch + decode",
        ("aiokafka/", "<listcomp> (streams/worker/loop.py", "Record.__init__ "),
    ),
    ("Redis replies, metrics", ("redis/", "worker_metrics.py", "publish_metrics ")),
)
BOOKKEEPING = "bookkeeping (event loop, worker, gc)"


def find_py_spy(explicit: str | None) -> str | None:
    return explicit or shutil.which("py-spy")


def attach(py_spy: str, pid: int, output: Path, rate: int = 400) -> subprocess.Popen[bytes]:
    """Sample `pid` until it exits; collapsed stacks ("frame;frame;... count", root first) go to `output`.

    Blocking mode (the default): py-spy pauses the worker for each sample, a small overhead at this rate,
    but every stack is consistent, which the stage attribution relies on."""
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "-o", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stage_of(frames: Iterable[str]) -> str:
    stack = list(frames)
    for stage, patterns in STAGES:
        if any(p in frame for frame in stack for p in patterns):
            return stage
    return BOOKKEEPING


def stage_samples(collapsed: Iterable[str]) -> Counter[str]:
    """Samples per stage from py-spy's raw (collapsed) output."""
    counts: Counter[str] = Counter()
    for line in collapsed:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        counts[stage_of(stack.split(";"))] += int(count)
    return counts


@dataclass(frozen=True)
class Breakdown:
    samples: Mapping[str, int]

    @classmethod
    def read(cls, path: Path) -> Breakdown:
        with path.open() as lines:
            return cls(stage_samples(lines))

    def lines(self, cpu_us_per_event: float) -> list[str]:
        """Each stage's share of the samples, scaled to the worker's measured CPU-us per event."""
        total = sum(self.samples.values())
        if not total:
            return ["  (no samples)"]
        order = [name for name, _ in STAGES] + [BOOKKEEPING]
        out = []
        for stage in order:
            share = self.samples.get(stage, 0) / total
            out.append(f"  {stage:50} {share * cpu_us_per_event:7.2f} CPU-us/event  {share:6.1%}")
        out.append(f"  {'total (' + str(total) + ' samples)':50} {cpu_us_per_event:7.2f} CPU-us/event")
        return out
