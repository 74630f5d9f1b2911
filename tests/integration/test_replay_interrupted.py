"""A replay that stops before its end (a refused commit, a killed process) leaves a namespace that is not the
log's: `promote` refuses it until a replay finishes, and no process of a split replay goes on writing it once
the command is gone (found in review, 6 December 2026: a promoted half namespace; orphans writing after
SIGTERM, racing a rerun with --force)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ResponseError

from streams import cli
from streams.replay.split import committed
from streams.sample import generator as sample
from streams.store.connection import async_client, sync_client
from streams.store.keys import KeySpace
from streams.store.redis_store import RedisStateStore
from tests.integration.worker_harness import make_settings
from tests.services import Services


def test_a_replay_that_stopped_half_way_cannot_be_promoted(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "events.jsonl.gz"
    total = sample.write_jsonl(sample.SampleSpec(customers=200, days=300, seed=9), path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    replay = ["replay", str(path), "--namespace", "half", "--batch", "300", "--no-progress"]
    replay += ["--output-dir", str(tmp_path)]
    real, calls = RedisStateStore.commit, 0

    async def refused_once(self: RedisStateStore, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 4:  # Redis refuses a commit mid-replay
            raise ResponseError("OOM command not allowed when used memory > 'maxmemory'.")
        await real(self, *args)

    monkeypatch.setattr(RedisStateStore, "commit", refused_once)
    assert cli.main(replay) != 0
    monkeypatch.setattr(RedisStateStore, "commit", real)
    keys = KeySpace(settings.key_prefix, "half", settings.events_topic)
    assert 0 < _applied(settings.redis_url, keys, 2) < total
    capsys.readouterr()
    assert cli.main(["promote", "half"]) == 3
    assert "its replay stopped before the end" in capsys.readouterr().err
    assert cli.main(["promote", "half", "--allow-incomplete"]) == 0
    assert cli.main(["promote", "main", "--allow-empty"]) == 0

    assert cli.main([*replay, "--force"]) == 0  # a replay that finishes: promotable
    assert _applied(settings.redis_url, keys, 2) == total
    client = sync_client(settings.redis_url)
    try:
        assert client.exists(keys.building()) == 0
    finally:
        client.close()
    assert cli.main(["promote", "half"]) == 0


def test_no_process_of_a_split_replay_writes_once_the_command_is_killed(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """kill -9 of `segstream replay --processes 2` (nothing of it can run): its share processes exit too."""
    path = tmp_path / "big.jsonl.gz"
    total = sample.write_jsonl(sample.SampleSpec(customers=1500, days=400, seed=5), path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=4)
    argv = [sys.executable, "-m", "streams.cli", "replay", str(path), "--namespace", "killed"]
    argv += ["--processes", "2", "--batch", "500", "--no-progress", "--output-dir", str(tmp_path)]
    parent = subprocess.Popen(
        argv, env=settings.as_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    keys = KeySpace(settings.key_prefix, "killed", settings.events_topic)
    try:
        deadline = time.monotonic() + 120
        while _applied(settings.redis_url, keys, 4) == 0:
            assert parent.poll() is None, parent.communicate()
            assert time.monotonic() < deadline, "no commit within 2 minutes"
            time.sleep(0.2)
        shares = _children(parent.pid)
        assert len(shares) == 2
    finally:
        parent.kill()
        parent.wait(10)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in shares) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in shares if _alive(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "the replay command is gone, its share processes still run"
    stopped = _applied(settings.redis_url, keys, 4)
    time.sleep(1)
    assert _applied(settings.redis_url, keys, 4) == stopped < total


def _applied(url: str, keys: KeySpace, partitions: int) -> int:
    async def count() -> int:
        client = async_client(url)
        try:
            return await committed(client, keys, partitions)
        finally:
            await client.aclose()

    return asyncio.run(count())


def _children(pid: int) -> list[int]:
    """The share processes whose parent is `pid` (Linux /proc; not multiprocessing's resource tracker)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline(entry):
                out.append(int(entry.name))
    return out


def cmdline(entry: Path) -> bytes:
    try:
        return (entry / "cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
