"""A dead letter's message header is written for the person reading the dead-letter topic: an error whose
text names no problem says its class, and a failure no check foresaw says it is segstream's (review of
7 December 2026: the decode backstop's dead letter for `decimal.InvalidOperation` read
"[<class 'decimal.InvalidOperation'>]")."""

from __future__ import annotations

import asyncio
from decimal import InvalidOperation
from pathlib import Path

import orjson
import pytest

from segmentation.events import parse_event
from streams.replay.output import Rejects
from streams.topics.deadletter import DeadLetter
from streams.worker import batch
from streams.worker.batch import Record, decode


def _message(dead: DeadLetter) -> str:
    return dict(dead.headers())["__connect.errors.exception.message"].decode()


def test_an_invalid_event_keeps_its_own_words() -> None:
    events, dead = decode([Record("events", 0, 0, b"c1", b'{"type": "purchase"}')])
    assert not events and _message(dead[0]).startswith("invalid purchase event: ")


def test_a_reader_failure_says_it_is_segstreams_and_names_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(raw: bytes) -> object:
        if b"boom" in raw:
            raise InvalidOperation([InvalidOperation])  # how decimal raises its signals
        return parse_event(raw)

    monkeypatch.setattr(batch, "parse_event", failing)
    _, dead = decode([Record("events", 0, 7, b"c1", orjson.dumps({"boom": 1}))])
    if not dead:
        pytest.skip("the compiled batch module calls the reader directly: the patch does not reach it")
    assert _message(dead[0]) == (
        "segstream failed on this record, not a check of it (please report it): "
        "InvalidOperation, with no message"
    )


@pytest.mark.parametrize(
    ("error", "unexpected", "message"),
    [
        (
            KeyError("grid"),
            True,
            "segstream failed on this record, not a check of it (please report it): KeyError: 'grid'",
        ),
        (ValueError(""), False, "ValueError, with no message"),
        (
            ValueError("birth_year 2030 is after the event's year 2026"),
            False,
            "birth_year 2030 is after the event's year 2026",
        ),
    ],
)
def test_messages(error: Exception, unexpected: bool, message: str) -> None:
    dead = DeadLetter("events", 0, 1, b"c1", b"{}", error, "apply", unexpected)
    assert _message(dead) == message


def test_a_replays_rejects_file_says_what_the_dead_letter_topic_says(tmp_path: Path) -> None:
    """The rejects file wrote `str(error)`: `[<class 'decimal.InvalidOperation'>]` (second review)."""
    dead = DeadLetter("file", 0, 3, b"c1", b"{}", InvalidOperation([InvalidOperation]), "parse", True)
    rejects = Rejects(tmp_path / "rejects.jsonl")
    asyncio.run(rejects.add([dead]))
    rejects.flush()
    rejects.close()
    (row,) = [orjson.loads(line) for line in (tmp_path / "rejects.jsonl").read_bytes().splitlines()]
    assert row["error"] == _message(dead) and "please report it" in row["error"]
