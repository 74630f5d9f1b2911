"""`segstream ...` as a real process whose stderr lines are collected while it runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from streams.settings import Settings


@contextmanager
def cli_process(settings: Settings, argv: list[str]) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """The process and its stderr lines so far; stopped with SIGINT (as Ctrl-C would) on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", *argv],
        env=settings.as_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    stderr = proc.stderr
    assert stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(stderr.readline, "")), daemon=True)
    reader.start()
    try:
        yield proc, lines
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        reader.join(10)
