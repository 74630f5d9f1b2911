"""The peer and latency benchmarks, run for a few seconds against the real broker and Redis, so they cannot
rot: each must finish and print figures for every job it compares."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import Services

ROOT = Path(__file__).resolve().parents[2]


def run(services: Services, script: str, *args: str) -> str:
    env = dict(
        os.environ,
        SEGSTREAM_KAFKA_BOOTSTRAP=services.kafka_bootstrap,
        SEGSTREAM_REDIS_URL=services.redis_url,
        SEGSTREAM_PROGRESS_INTERVAL_S="0",
    )
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.timeout(120)
@pytest.mark.skipif(
    importlib.util.find_spec("quixstreams") is None,
    reason="quixstreams not installed: pip install -e '.[bench-peer]'",
)
def test_peer_benchmark_compares_segstream_with_the_quixstreams_job(services: Services) -> None:
    out = run(services, "bench_peers.py", "--events", "2000", "--rounds", "1", "--naive-events", "0")
    rows = {
        m[1]: float(m[2].replace(",", ""))
        for m in re.finditer(r"^(segstream worker|quixstreams peer) +([\d,]+) +[\d.]+", out, re.M)
    }
    assert set(rows) == {"segstream worker", "quixstreams peer"}, out
    assert all(rate > 0 for rate in rows.values())
    assert re.search(r"^segstream vs quixstreams peer: [\d.]+x events/s, [\d.]+x less CPU", out, re.M), out
    published = dict(
        re.findall(
            r"^  (segstream worker|quixstreams peer) round 1: .* (\d+) transitions published", out, re.M
        )
    )
    ours, theirs = int(published["segstream worker"]), int(published["quixstreams peer"])
    assert ours > 0
    assert abs(ours - theirs) <= 0.02 * ours  # the same job: only time-driven transitions differ


@pytest.mark.timeout(120)
def test_latency_benchmark_measures_event_to_transition_percentiles(services: Services) -> None:
    out = run(services, "bench_latency.py", "--rates", "400", "--seconds", "4", "--warmup", "1")
    assert "settings: defaults" in out, out
    row = re.search(r"^ +400 +([\d,]+) +(\d+) +([\d.]+) +([\d.]+) +([\d.]+) +([\d.]+) ", out, re.M)
    assert row is not None, out
    achieved, events, p50, p95, p99, top = (float(g.replace(",", "")) for g in row.groups())
    assert 300 <= achieved <= 500  # the producer kept the rate
    assert events > 0  # events that changed a segment were matched to their transitions
    assert 0 < p50 <= p95 <= p99 <= top
