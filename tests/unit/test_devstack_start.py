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
from streams.devstack.__main__ import main as devstack_cli
from streams.devstack.config import StackConfig
from streams.devstack.process import alive, read_pid, spawn, stop


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


def test_a_stale_pid_file_whose_pid_now_runs_another_program_in_our_folder_is_not_killed(
    tmp_path: Path,
) -> None:
    """After a reboot or a kill -9 the pid file stays; its pid may be reused by a program that runs in the
    data folder (a shell, `tail -f`), which the marker check took for our redis-server: `down` killed it."""
    data = tmp_path / "redis" / "data"
    data.mkdir(parents=True)
    pid_file = tmp_path / "redis" / "redis.pid"
    ours = spawn(["true"], tmp_path / "redis" / "redis.log", pid_file, marker=str(data))
    while alive(ours):  # the stack's process is gone; its pid file stays
        time.sleep(0.05)
    time.sleep(0.1)  # a later start time (clock ticks of 10 ms): the pid is reused after its owner died
    stranger = subprocess.Popen(["sleep", "30"], cwd=data)
    try:
        lines = pid_file.read_text().splitlines()
        pid_file.write_text("\n".join([str(stranger.pid), *lines[1:]]) + "\n")  # the kernel reused the pid
        assert read_pid(pid_file) is None, pid_file.read_text()
        assert stop(pid_file, grace_seconds=1) is False
        assert stranger.poll() is None, "down killed a process the stack did not start"
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.parametrize("command", ["up", "status", "down"])
def test_a_port_that_is_not_a_number_is_one_error_line(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SEGSTREAM_DEVSTACK_REDIS_PORT=6379x ended every devstack command in a ValueError traceback."""
    monkeypatch.setenv("SEGSTREAM_DEVSTACK_REDIS_PORT", "6379x")
    assert devstack_cli([command]) == 1
    assert capsys.readouterr().err == (
        "error: SEGSTREAM_DEVSTACK_REDIS_PORT must be a port number from 1 to 65535, not '6379x'\n"
    )


def test_a_cluster_port_whose_bus_ports_do_not_exist_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SEGSTREAM_DEVSTACK_CLUSTER_PORT=60000: bus port 70000 ended `up --redis-cluster` in an OverflowError
    traceback. (Should the check not hold, the held Redis port stops `up` before it starts anything.)"""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        monkeypatch.setenv("SEGSTREAM_DEVSTACK_REDIS_PORT", str(held.getsockname()[1]))
        monkeypatch.setenv("SEGSTREAM_DEVSTACK_DIR", str(tmp_path))
        monkeypatch.setenv("SEGSTREAM_DEVSTACK_CLUSTER_PORT", "60000")
        assert devstack_cli(["up", "--redis-cluster"]) == 1
    assert capsys.readouterr().err == (
        "error: SEGSTREAM_DEVSTACK_CLUSTER_PORT must be a port number from 1 to 55533 (3 nodes from it, each "
        "bus + 10000), not '60000'\n"
    )


def test_a_cluster_node_that_died_says_why(tmp_path: Path) -> None:
    """A cluster node's failed start said only "see redis.log"; a single server's quoted its warnings."""
    from streams.devstack import redis_cluster
    from streams.devstack.process import mark_start

    cfg = StackConfig(root=tmp_path, cluster_port=_closed_port())
    port = redis_cluster.ports(cfg)[0]
    log = redis_cluster._node_dir(cfg, port) / "redis.log"
    log.parent.mkdir(parents=True)
    log.write_text("1:M 01 Dec 2026 # from an earlier start: not quoted\n")
    mark_start(log)
    warning = "1:M 06 Dec 2026 10:00:00.000 # Unrecoverable error: corrupted cluster config file"
    pid = spawn(["sh", "-c", f"echo '{warning}'"], log, tmp_path / "node.pid", marker="x")
    time.sleep(0.3)
    with pytest.raises(StackError) as raised:
        redis_cluster._wait_ping(cfg, port, pid, 10.0)
    assert str(raised.value).splitlines()[1:] == [warning]
