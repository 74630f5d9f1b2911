"""The long commands' progress bar (issue 17, item 2): on a terminal, percent and ETA of a gzip file replay
(from the compressed offset); redirected to a pipe or a file, not one ANSI code or carriage return."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from streams.sample import generator as sample
from streams.settings import Settings
from tests.integration.worker_harness import make_settings
from tests.services import Services


def replay_argv(path: Path, namespace: str) -> list[str]:
    return [sys.executable, "-m", "streams.cli", "replay", str(path), "--namespace", namespace]


def on_a_terminal(argv: list[str], settings: Settings, cwd: Path, timeout: float = 120.0) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal; everything it wrote there, and its exit code."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        argv,
        env=settings.as_environment(),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the process closed its end
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(10), out.decode("utf-8", "replace")


def test_replay_bar_on_a_terminal_and_plain_output_otherwise(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl.gz"
    total = sample.write_jsonl(sample.SampleSpec(customers=300, days=365, seed=3, malformed_share=0.01), path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)

    piped = subprocess.run(
        replay_argv(path, "piped"), env=settings.as_environment(), cwd=tmp_path, capture_output=True
    )
    assert piped.returncode == 0, piped.stderr
    for stream in (piped.stdout, piped.stderr):
        assert b"\x1b" not in stream and b"\r" not in stream, stream  # no ANSI, no redrawn line
    assert f"{total:,}".encode() in piped.stdout or str(total).encode() in piped.stdout

    code, shown = on_a_terminal(replay_argv(path, "tty"), settings, tmp_path)
    assert code == 0, shown
    assert "replay" in shown and "ETA" in shown and "100%" in shown, shown
    assert f"{total:,} events" in shown, shown  # the bar's own count, last drawn at the end
