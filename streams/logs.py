"""How every segstream process logs: one handler on stderr, text for people or one JSON object per line for a
log collector (`--log-format json` / SEGSTREAM_LOG_FORMAT), and no alarm for a broker's transient
"not the leader yet" right after we created a topic.

Kept apart from `settings` (which imports nothing and connects nothing) and from the CLI (which nothing may
import), so the API's own entry point (`python -m streams.read.api`) configures logging the same way.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final, Literal, TextIO

LogFormat = Literal["text", "json"]
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK: Final = "_segstream_handler"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601, ms), level, logger, message (and the traceback, as one
    string, when there is one), so a collector never has to guess where a record ends."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class JsonLines:
    """stderr in JSON mode: each line a command prints there (its one-line error, a "waiting for Kafka"
    line) becomes one object like a log record's, so a collector reading a JSON stream never meets a plain
    line. A line "segstream <command>: ..." is the command's failure (ERROR), "segstream <command>: warning:
    ..." a WARNING, any other one INFO. Reports no
    terminal: progress bars, drawn for people, stay silent."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self._pending = stream, ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in filter(str.strip, lines):
            failure = _FAILURE.match(line)
            level = "INFO" if failure is None else "WARNING" if failure[1] else "ERROR"
            entry = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": level,
                     "logger": "segstream", "message": line}  # fmt: skip
            self.stream.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._pending.strip():
            self.write("\n")
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)


_FAILURE: Final = re.compile(r"segstream[\w -]*: (warning: )?")


def real_stderr() -> TextIO:
    """Where log records go: stderr itself, never through `JsonLines` (a record is already one object)."""
    return sys.stderr.stream if isinstance(sys.stderr, JsonLines) else sys.stderr


def configure(log_format: LogFormat = "text", force: bool = False) -> None:
    """Send every log record to stderr in the given format: segstream's own at INFO (progress and lifecycle
    lines), libraries' at WARNING. The first call wins unless `force`: `segstream api` configures logging in
    the CLI with the global flag, and the API's own `main` must not undo it."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _MARK, False)]
    if ours and not force:
        return
    for old in ours:  # other handlers (a test runner's capture) stay
        root.removeHandler(old)
    handler = logging.StreamHandler(real_stderr())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("segstream").setLevel(logging.INFO)


class NewTopicNoise(logging.Filter):
    """Drops aiokafka's NotLeaderForPartitionError records about topics this process has just created.

    Right after a topic is created the broker announces its partitions' leader before that leader serves
    them, so the first offset lookup or produce request is answered "not the leader" and aiokafka logs it
    (the consumer's as ERROR) and retries, successfully. Nothing is wrong, so nothing is shown; the same error
    on any other topic, or later than `window_s` after the creation, still is."""

    LOGGERS: Final = ("aiokafka.consumer.fetcher", "aiokafka.producer.sender", "aiokafka.cluster")

    def __init__(self, window_s: float = 60.0) -> None:
        super().__init__()
        self.window_s = window_s
        self.created: dict[str, float] = {}  # topic -> monotonic time of its creation

    def topics_created(self, topics: Iterable[str]) -> None:
        now = time.monotonic()
        self.created.update((t, now) for t in topics)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "NotLeaderForPartition" not in message:
            return True
        now = time.monotonic()
        for topic in re.findall(r"topic='([^']*)'", message):
            at = self.created.get(topic)
            if at is not None and now - at <= self.window_s:
                return False
        return True


_noise = NewTopicNoise()


def topics_created(topics: Iterable[str]) -> None:
    """Tell the filter these topics were just created (installed on aiokafka's loggers on first use)."""
    for name in NewTopicNoise.LOGGERS:
        logger = logging.getLogger(name)
        if _noise not in logger.filters:
            logger.addFilter(_noise)
    _noise.topics_created(topics)
