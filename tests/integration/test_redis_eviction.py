"""A Redis that deletes keys when full (maxmemory-policy allkeys-*): a customer's hash evicted is that
customer's events lost without a word. The worker and the replay refuse it before writing anything, and
`doctor` warns about it (and about keys already evicted). On a redis-server of the test's own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from streams.sample import generator as sample
from streams.store.tuning import eviction_warnings

pytestmark = pytest.mark.integration


def _segstream(env: dict[str, str], client: redis.Redis, *argv: str) -> subprocess.CompletedProcess[str]:
    port = client.connection_pool.connection_kwargs["port"]
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *argv],
        env={**env, "SEGSTREAM_REDIS_URL": f"redis://127.0.0.1:{port}/0"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_the_worker_refuses_a_redis_that_evicts_keys_before_writing_anything(
    env: dict[str, str], own_redis: Callable[..., redis.Redis], policy: str
) -> None:
    server = own_redis("--maxmemory", "64mb", "--maxmemory-policy", policy)
    try:
        done = _segstream(env, server, "worker")
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker started on a Redis with maxmemory-policy {policy}")
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert f"maxmemory-policy is {policy}" in last and "noeviction" in last, last
    assert server.dbsize() == 0


def test_a_replay_refuses_a_redis_that_evicts_keys(
    env: dict[str, str], own_redis: Callable[..., redis.Redis], tmp_path: Path
) -> None:
    server = own_redis("--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
    path = tmp_path / "events.jsonl.gz"
    sample.write_jsonl(sample.SampleSpec(customers=20, days=30, seed=3), path)
    done = _segstream(env, server, "replay", str(path), "--namespace", "check", "--no-progress")
    assert done.returncode == 2, done.stderr
    assert "maxmemory-policy is allkeys-lru" in done.stderr.strip().splitlines()[-1]
    assert server.dbsize() == 0


def test_doctor_warns_about_an_evicting_policy_and_evicted_keys(
    env: dict[str, str], own_redis: Callable[..., redis.Redis]
) -> None:
    server = own_redis("--maxmemory-policy", "allkeys-lru")
    server.set("other-app:blob", b"x" * 2_000_000)
    server.config_set("maxmemory", server.info("memory")["used_memory"] - 500_000)
    server.set("other-app:more", b"y")  # makes room: the blob is evicted
    assert server.info("stats")["evicted_keys"] >= 1
    done = _segstream(env, server, "doctor", "--strict")
    assert done.returncode == 3, done.stderr
    assert "maxmemory-policy is allkeys-lru" in done.stderr
    assert "evicted" in done.stderr and "keys since it started" in done.stderr


def test_volatile_and_noeviction_policies_are_no_warning() -> None:
    """segstream sets no TTL: a volatile-* policy never picks its keys (a full Redis refuses writes)."""
    for policy in ("noeviction", "volatile-lru", "volatile-lfu", "volatile-ttl", "volatile-random"):
        assert eviction_warnings([{"maxmemory_policy": policy, "evicted_keys": 0}]) == []
