"""The progress bar of the long commands (replay, `sample` to a topic, `definitions apply`), drawn by rich.

On stderr, so stdout stays the command's result; and only when stderr is a terminal: redirected to a file or
a pipe (CI, a log collector), a command prints no bar, no ANSI code and no carriage return, only its result.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Bar:
    """Percent and ETA when the total is known (file bytes, partitions, days of a sample), a pulsing bar
    otherwise; `detail` is the caller's own count (events, customers) and rate. A no-op when disabled.

    rich redraws from its own thread at most 5 times a second, so `update` only stores numbers: a caller may
    call it once per batch without slowing down."""

    def __init__(
        self,
        description: str,
        total: float | None,
        enabled: bool | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        stream = stream or sys.stderr
        self.enabled = stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=stream),
                refresh_per_second=5,
                transient=False,
            )
            self._task = self._progress.add_task(description, total=total, detail="")
            self._progress.start()

    def rate(self, count: float) -> float:
        """`count` per second since the bar was made."""
        return count / max(time.monotonic() - self.started, 1e-9)

    def update(self, completed: float, total: float | None = None, detail: str = "") -> None:
        if self._progress is None or self._task is None:
            return
        if total is not None:
            self._progress.update(self._task, total=total)
        self._progress.update(self._task, completed=completed, detail=detail)

    def close(self, completed: float | None = None) -> None:
        """Stop drawing, the bar left at `completed` (its total when None: the work is done)."""
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[0]
        final = completed if completed is not None else task.total
        if final is not None:
            self._progress.update(self._task, completed=final, total=max(final, task.total or 0))
        self._progress.stop()
        self._progress = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:  # left as it was: the work did not finish
            task = None if self._progress is None else self._progress.tasks[0]
            self.close(None if task is None else task.completed)
