"""What a replay writes besides Redis: the rejects file (with the file line of each dead letter) and the
progress bar. Kept apart from the replay loop (streams.replay.rebuild) so each stays readable."""

from __future__ import annotations

import base64
from array import array
from pathlib import Path
from typing import IO

import orjson

from streams.progress import Bar as ProgressBar
from streams.replay.sources import Progress
from streams.topics.deadletter import DeadLetter


class ReplayError(Exception):
    """The replay cannot go on (fenced by another process, partition count mismatch, ...)."""


class LineIndex:
    """File line of each pending record, per partition: runs of consecutive offsets with their lines in an
    array (8 bytes per record; a dict keyed by (partition, offset) cost ~150 bytes and grew with the drain
    window: ~100 MiB at 640k records)."""

    def __init__(self) -> None:
        self._runs: dict[int, list[tuple[int, array[int]]]] = {}

    def extend(self, partition: int, first_offset: int, lines: array[int]) -> None:
        runs = self._runs.setdefault(partition, [])
        if runs and runs[-1][0] + len(runs[-1][1]) == first_offset:
            runs[-1][1].extend(lines)
        else:
            runs.append((first_offset, array("q", lines)))

    def get(self, partition: int, offset: int) -> int | None:
        for first, lines in self._runs.get(partition, ()):
            if 0 <= offset - first < len(lines):
                return lines[offset - first]
        return None

    def clear(self) -> None:
        self._runs.clear()


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Rejects:
    """Dead letters as JSON lines, in line order within each flush; knows the lines of the pending records.

    A dead letter is rendered to its row as soon as it arrives (see `deadletter._detach` for why it must not
    be kept)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self._file: IO[bytes] | None = None
        self._pending: list[tuple[int, int, int, bytes]] = []  # (line or -1, partition, offset, row)
        self.lines = LineIndex()

    async def add(self, dead: list[DeadLetter]) -> None:
        for d in dead:
            line = self.lines.get(d.partition, d.offset)
            row = {
                "line": line,
                "partition": d.partition,
                "offset": d.offset,
                "stage": d.stage,
                "error_class": f"{type(d.error).__module__}.{type(d.error).__qualname__}",
                "error": d.message()[:2000],
                "value": None if d.value is None else d.value.decode("utf-8", "replace"),
            }
            if d.value is not None and not _utf8(d.value):  # "value" lost bytes: the line as it was too
                row["value_base64"] = base64.b64encode(d.value).decode()
            self._pending.append((-1 if line is None else line, d.partition, d.offset, orjson.dumps(row)))

    def flush(self) -> None:
        self.lines.clear()
        if not self._pending:
            return
        if self._file is None:
            if self.path is None:
                raise ReplayError("dead letters but no rejects file: refusing to drop them")
            self._file = self.path.open("wb")
        self._pending.sort(key=lambda r: (r[0], r[1], r[2]))
        self._file.write(b"".join(r[3] + b"\n" for r in self._pending))
        self.count += len(self._pending)
        self._pending.clear()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Bar:
    """The replay's progress bar (`streams.progress.Bar`): percent and ETA of the source (bytes of a file, the
    compressed offset of a gzip one; records of a topic), events and rate; nothing when stderr is no
    terminal."""

    def __init__(
        self, progress: Progress, stream: IO[str] | None = None, enabled: bool | None = None
    ) -> None:
        self.progress = progress
        self.bar = ProgressBar("replay", progress.total, enabled=enabled, stream=stream)
        self.enabled = self.bar.enabled

    def update(self, events: int, final: bool = False) -> None:
        p = self.progress
        detail = f"{events:,} events {self.bar.rate(events):,.0f}/s"
        self.bar.update(p.done if p.total else events, total=p.total, detail=detail)
        if final:
            self.bar.close()

    def close(self) -> None:
        """Stop drawing (a failed replay): the terminal gets its cursor back, the bar stays where it was."""
        self.bar.close(self.progress.done)
