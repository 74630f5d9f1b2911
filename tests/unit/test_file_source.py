"""A JSON-lines file read as the replay reads it: every line's number and bytes, nothing lost or misread."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from streams.replay.sources import FileSource

LINES = [b'{"customer_id":"c1","n":1}', b'{"customer_id":"c2","n":2}']


@pytest.mark.parametrize("zipped", [False, True])
def test_a_byte_order_mark_and_crlf_do_not_reach_the_events(tmp_path: Path, zipped: bool) -> None:
    """An editor's UTF-8 BOM before the first event (and Windows line ends) would make the first line
    invalid JSON: a dead letter for a good event."""
    body = b"\xef\xbb\xbf" + b"\r\n".join(LINES) + b"\r\n\r\n"
    path = tmp_path / "events.jsonl"
    path.write_bytes(gzip.compress(body) if zipped else body)
    source = FileSource(path, 4)
    assert [(n, cid, line) for n, cid, line in source.keyed()] == [(1, "c1", LINES[0]), (2, "c2", LINES[1])]
    assert source.blank_lines == 1


def test_a_mark_inside_the_file_is_left_to_the_parser(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(LINES[0] + b"\n\xef\xbb\xbf" + LINES[1] + b"\n")
    assert [line for _, _, line in FileSource(path, 4).keyed()] == [LINES[0], b"\xef\xbb\xbf" + LINES[1]]
