"""The local stack's readiness wait judges "exited" on the process it spawned (issue 17: a healthy
redis-server was reported as "exited during start" because the pid file was checked against
/proc/<pid>/cmdline before the child's exec had filled it)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from streams.devstack import StackError, redis
from streams.devstack.config import StackConfig
from streams.devstack.process import read_pid, spawn


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_live_child_whose_cmdline_does_not_match_yet_is_still_starting(tmp_path: Path) -> None:
    """The race, frozen: the pid file names a live child whose cmdline lacks the marker (as before exec)."""
    cfg = StackConfig(root=tmp_path, redis_port=_closed_port())
    pid_file = cfg.redis_dir / "redis.pid"
    pid = spawn(["sleep", "30"], cfg.redis_dir / "redis.log", pid_file, marker=str(tmp_path / "data"))
    try:
        assert read_pid(pid_file) is None  # what the old check looked at: "not ours, so it exited"
        with pytest.raises(StackError, match="did not answer PING"):
            redis.wait_ready(cfg, pid, timeout=1.0)
    finally:
        subprocess.run(["kill", str(pid)], check=False)


def test_a_child_that_died_is_reported_at_once(tmp_path: Path) -> None:
    cfg = StackConfig(root=tmp_path, redis_port=_closed_port())
    pid = spawn(["true"], cfg.redis_dir / "redis.log", cfg.redis_dir / "redis.pid", marker="x")
    time.sleep(0.3)  # `true` has exited (a zombie of ours: counted as gone)
    started = time.monotonic()
    with pytest.raises(StackError, match="exited during start"):
        redis.wait_ready(cfg, pid, timeout=10.0)
    assert time.monotonic() - started < 6.0  # well before the 10 s timeout, on a loaded CI box too
