"""Pid-file bookkeeping so `down` stops only the processes `up` started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat, field 22): a pid and its start
    time name one process for good, where a pid alone is reused once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def read_pid(pid_file: Path) -> int | None:
    """Return the pid recorded in pid_file if that process is alive and still ours."""
    try:
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    marker = lines[1].strip() if len(lines) > 1 else ""
    # A stale pid file (the stack died with the machine, or by kill -9) may name a pid the kernel has given to
    # another program since, one that can run in our data folder too (a shell, `tail -f` of a log): the start
    # time recorded by `spawn` tells them apart. Files written before it was recorded have two lines only.
    started = lines[2].strip() if len(lines) > 2 else ""
    if started and start_time(pid) != started:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        cwd = str(Path(f"/proc/{pid}/cwd").resolve())
    except OSError:
        return None
    # A recycled pid belongs to someone else: ours name their data folder on the command line or run in it
    # (redis-server rewrites its process title but chdirs into --dir).
    if (marker not in cmdline and marker != cwd) or not alive(pid):
        return None
    return pid


def spawn(
    argv: list[str], log_file: Path, pid_file: Path, marker: str, env: dict[str, str] | None = None
) -> int:
    """Start argv detached from our session (it outlives `up`), logging to log_file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    pid_file.write_text(f"{proc.pid}\n{marker}\n{start_time(proc.pid) or ''}\n")
    return proc.pid


START_MARK = "-- segstream devstack: start at "


def mark_start(*logs: Path) -> None:
    """A line in each log before a start. The logs keep every earlier start's lines, and a failed start
    quoted their last lines: an earlier start's "Invalid maximum heap size" after the heap was fixed."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    for path in logs:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as log:
            log.write(f"{START_MARK}{stamp}\n")


def since_start(log: Path) -> list[str]:
    """The lines the last start wrote to `log` (all of them in a log from before the marks)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    return (text.rsplit(START_MARK, 1)[1].split("\n", 1)[-1] if START_MARK in text else text).splitlines()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop(pid_file: Path, grace_seconds: float = 30.0) -> bool:
    """SIGTERM the recorded process, wait for a clean exit, SIGKILL only as a last resort."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            _reap(pid)
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (e.g. started by a test fixture)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
