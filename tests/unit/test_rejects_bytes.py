"""The rejects file keeps each rejected line as it was: a line that is not UTF-8 (a latin-1 export, say) is
also written in base64, since its JSON text cannot hold those bytes (found in review, 6 December 2026)."""

from __future__ import annotations

import asyncio
import base64
from array import array
from pathlib import Path

import orjson

from streams.replay.output import Rejects
from streams.topics.deadletter import DeadLetter


def _row(tmp_path: Path, line: bytes) -> dict[str, object]:
    rejects = Rejects(tmp_path / "r.jsonl")
    rejects.lines.extend(0, 0, array("q", [1]))
    asyncio.run(rejects.add([DeadLetter("t", 0, 0, b"c1", line, ValueError("bad"), "parse")]))
    rejects.flush()
    rejects.close()
    row: dict[str, object] = orjson.loads((tmp_path / "r.jsonl").read_bytes())
    return row


def test_a_rejected_line_that_is_not_utf8_is_kept_byte_for_byte(tmp_path: Path) -> None:
    line = b'{"customer_id": "c1", "note": "caf\xe9"}'
    row = _row(tmp_path, line)
    assert row["value"] == '{"customer_id": "c1", "note": "caf\ufffd"}'  # readable, a byte replaced
    assert base64.b64decode(str(row["value_base64"])) == line


def test_a_utf8_line_is_kept_as_text_only(tmp_path: Path) -> None:
    line = '{"customer_id": "c1", "note": "café"'.encode()
    row = _row(tmp_path, line)
    assert row["value"] == line.decode() and "value_base64" not in row
