"""A dead letter's headers stay within the ~4 KB the README leaves beside DLQ_MAX_VALUE_BYTES, in bytes."""

from __future__ import annotations

import orjson
import pytest

from streams.topics.deadletter import MAX_KEY, MAX_MESSAGE, DeadLetter
from streams.worker.batch import Record, decode

HEADROOM = 4096  # README, DLQ_MAX_VALUE_BYTES: keep it below the topic's max.message.bytes minus ~4 KB


def _size(key: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + sum(len(name.encode()) + len(value) for name, value in headers)


def test_an_unknown_field_named_in_emoji_keeps_the_headers_within_the_headroom() -> None:
    """Its name is in the error: 3,000 emoji were 2,000 characters but 7.9 KB of message header."""
    event = {
        "type": "email_open", "event_id": "e1", "customer_id": "c1", "occurred_at": "2026-01-01T00:00:00Z",
        "schema_version": 1, "campaign_id": "x", "\U0001f600" * 3000: 1,
    }  # fmt: skip
    value = orjson.dumps(event)
    _, (dead,) = decode([Record("events", 0, 5, b"c1" * 600, value)])
    key, kept, headers = dead.record(max_value=1000)
    message = dict(headers)["__connect.errors.exception.message"]
    assert len(message) <= MAX_MESSAGE
    assert str(dead.error).startswith(message.decode())  # cut between characters, never inside one
    assert key is not None and len(key) == MAX_KEY and kept == value[:1000]
    assert _size(key, headers) <= HEADROOM


@pytest.mark.parametrize("text", ["short", "é" * 1500, "\U0001f600" * 1000, "bad \udc80 surrogate"])
def test_the_message_header_is_valid_utf8_of_at_most_max_message_bytes(text: str) -> None:
    dead = DeadLetter("events", 0, 1, b"c1", b"{}", ValueError(text), "parse")
    message = dict(dead.headers())["__connect.errors.exception.message"]
    assert len(message) <= MAX_MESSAGE
    shown = message.decode()  # raises if a character was cut in two
    whole = text.encode("utf-8", "backslashreplace")  # a lone surrogate escaped, not a failed dead letter
    assert shown == whole.decode() if len(whole) <= MAX_MESSAGE else whole.decode().startswith(shown)
