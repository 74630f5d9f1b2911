"""A JSON-lines file read as the replay reads it: every line's number and bytes, nothing lost or misread."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from streams.replay.sources import FileSource, SourceError

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


def test_a_gzip_file_cut_short_is_one_clear_error_after_the_lines_it_holds(tmp_path: Path) -> None:
    """A download cut short used to end the replay with a bare EOFError traceback (exit 1)."""
    lines = [b'{"customer_id":"c%d","n":%d}' % (n % 977, n) for n in range(150_000)]  # > 2 read buffers
    whole = gzip.compress(b"\n".join(lines) + b"\n")
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(whole[: len(whole) * 3 // 4])
    read: list[int] = []
    with pytest.raises(
        SourceError, match=r"events.jsonl.gz: the gzip data is damaged after line \d+"
    ) as error:
        read.extend(n for n, _, _ in FileSource(path, 4).keyed())
    assert read and read == list(range(1, len(read) + 1)) and error.value.exit_code == 2
    assert f"after line {read[-1]} " in str(error.value)
