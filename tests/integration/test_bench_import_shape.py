"""The import-shape benchmarks (issue #13): run briefly against the real broker and Redis so they cannot rot,
and the memory split checked against keys whose sizes we know."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.footprint import drop, measure
from streams.store.connection import sync_client
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
        timeout=150,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def row(out: str, name: str) -> list[str]:
    match = re.search(rf"^ +{re.escape(name)} +(\S+) +(\S+) +(\S+)$", out, re.M)
    assert match is not None, f"no row {name!r} in:\n{out}"
    return list(match.groups())


def test_footprint_splits_a_prefix_into_customer_keys_and_aggregates(
    services: Services, redis_prefix: str
) -> None:
    client = sync_client(services.redis_url)
    prefix = redis_prefix.rstrip(":")
    tag = f"{prefix}:main:{{events:0}}"
    client.hset(f"{tag}:c:c000001", mapping={"lifecycle": "new", "orders": "1"})
    client.hset(f"{tag}:c:c000002", mapping={"state": b"\x02" + bytes(300)})
    client.rpush(f"{tag}:h:c000001", *[f"entry-{i}" for i in range(50)])
    client.sadd(f"{tag}:m:lifecycle:new", "c000001", "c000002")
    client.set(f"{prefix}:main:meta", "v2")
    size = {key: int(client.memory_usage(key, samples=0) or 0) for key in client.scan_iter(f"{prefix}:*")}
    footprint = measure(client, prefix, {"c000001", "c000002", "c000003"})
    assert footprint.customers == 2  # c000003 has no key: not counted
    assert (footprint.customer_keys, footprint.aggregate_keys) == (3, 2)
    customer = sum(v for k, v in size.items() if b":c:" in k or b":h:" in k)
    assert footprint.customer_bytes == customer
    assert footprint.aggregate_bytes == sum(size.values()) - customer
    assert set(footprint.kinds) == {"c:<id>", "h:<id>", "m", "meta"}
    dropped = drop(client, prefix, footprint)
    assert dropped is not None and dropped.used_memory_delta is not None
    assert not list(client.scan_iter(f"{prefix}:*"))
    client.close()


@pytest.mark.timeout(240)
def test_replay_benchmark_compares_a_baseline_on_the_order_history(services: Services) -> None:
    """This checkout as its own baseline: the same transitions, ratio 1 for the deterministic figures."""
    out = run(
        services,
        "bench_replay.py",
        "--profile", "order-history", "--customers", "150", "--baseline", str(ROOT), "--rounds", "1",
    )  # fmt: skip
    assert re.search(r"^full: [\d,]+ lines \(150 customers, 548 days, profile order-history\)", out, re.M)
    assert re.search(r"transitions before \[(\d+)\], after \[\1\]: the same", out), out
    assert row(out, "transitions/event")[2] == "1.00x"
    per_customer = row(out, "per-customer keys")
    assert per_customer[0] == per_customer[1] and per_customer[2] == "1.00x"  # same code, same bytes
    assert float(row(out, "bytes/customer")[1].replace(",", "")) > 0
    for name in ("CPU-us/event replay", "CPU-us/transition replay", "CPU-us/transition total", "events/s"):
        assert float(row(out, name)[1].replace(",", "")) > 0


@pytest.mark.timeout(240)
def test_worker_benchmark_reports_per_transition_and_bytes_per_customer(services: Services) -> None:
    out = run(
        services,
        "bench_worker.py",
        "--profile", "order-history", "--customers", "150", "--rounds", "1", "--naive-events", "0",
    )  # fmt: skip
    assert "profile order-history" in out, out
    tpe = re.search(r"^  ([\d.]+) transitions/event; CPU-us/transition worker ([\d.]+)", out, re.M)
    assert tpe is not None, out
    # an import moves several grids per event; the CPU per transition may round to 0.00 on 150 customers
    assert float(tpe[1]) > 1 and float(tpe[2]) >= 0
    memory = re.search(r"^  Redis bytes/customer ([\d,]+), per-customer keys ([\d,]+)", out, re.M)
    assert memory is not None, out
    assert int(memory[1].replace(",", "")) > int(memory[2].replace(",", "")) > 0


@pytest.mark.timeout(240)
def test_commit_replay_benchmark_runs_the_captured_commits_and_their_reduced_copies(
    services: Services,
) -> None:
    """Every captured commit runs again, as it was and without its counters or membership moves (the
    benchmark stops on a refused one): a change of the commit's argument layout breaks this first."""
    out = run(
        services, "bench_commit_replay.py", "--customers", "150", "--rounds", "1", "--baseline", str(ROOT)
    )
    counted = re.search(
        r"^([\d,]+) events: (\d+) commits, ([\d,]+) customer writes, ([\d,]+) BITS args", out, re.M
    )
    assert counted is not None, out
    assert int(counted[2]) >= 4 and int(counted[3].replace(",", "")) >= 150  # each partition, each customer
    for script in ("before", "after"):
        assert re.search(rf"^ *{script}: script [\d.]+ s = [\d.]+ µs per event; counters", out, re.M), out
    assert re.search(r"^  as replayed: after/before [\d.]+x$", out, re.M), out
