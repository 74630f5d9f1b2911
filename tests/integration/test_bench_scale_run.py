"""benchmarks/bench_scale.py run small against the real broker and Redis, so the table of docs/capacity.md
cannot rot: it must finish, measure every worker count and the rebalance cost of each trigger asked for."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import Services

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_scale_benchmark_measures_each_worker_count_and_the_rebalance_cost(
    services: Services, tmp_path: Path
) -> None:
    out_json = tmp_path / "scale.json"
    env = dict(
        os.environ,
        SEGSTREAM_KAFKA_BOOTSTRAP=services.kafka_bootstrap,
        SEGSTREAM_REDIS_URL=services.redis_url,
    )
    args = ["--workers", "1,2", "--events", "3000", "--rounds", "1", "--idle-s", "0.5", "--rate", "300"]
    args += ["--hold-s", "1", "--timeout-s", "30", "--triggers", "join,leave", "--json", str(out_json)]
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_scale.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| ([\d,]+) \|", done.stdout, re.M)}
    assert set(rows) == {1, 2}, done.stdout
    data = json.loads(out_json.read_text())
    for n in ("1", "2"):
        (run,) = data["rounds"][n]
        assert run["workers"] == int(n) and len(run["per_worker"]) == int(n) and len(run["idle"]) == int(n)
        assert run["rate"] > 0 and run["events"] > 0
        assert run["cpu"]["workers"] > 0  # the workers' CPU was read from /proc over the window
        costs = data["rebalance"][n]
        assert set(costs) == {"join", "leave"}
        for c in costs.values():
            assert c["rate_before"] > 0  # the steady load was applied before the trigger
            assert 0 <= c["group_pause"] <= c["partition_pause"]  # durations are figures, not limits here
