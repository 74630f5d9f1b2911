"""A sync cursor names the build of the namespace it was given for (`@<tag>`): a cursor of another build is
refused as `moved` (exit 2, HTTP 409), one without a tag (an earlier version's) is not checked."""

from __future__ import annotations

import pytest

from streams.read.changes import ChangesError, Window, check_build, parse_cursor
from streams.store.readable import build_of

BLUE, GREEN = build_of("blue", "a1"), build_of("blue", "b2")  # one name, two builds


def test_a_cursor_names_its_build_and_reads_back() -> None:
    cursor = Window({0: 1, 1: 2}, {0: 7, 1: 20}, build=BLUE).cursor()
    offsets, _, tag = cursor.partition("@")
    assert offsets == "0:7,1:20" and len(tag) == 8
    assert parse_cursor(cursor, [0, 1]) == {0: 7, 1: 20}
    check_build(cursor, BLUE)


def test_a_cursor_of_another_build_is_refused_as_moved() -> None:
    cursor = Window({0: 1}, {0: 7}, build=BLUE).cursor()
    with pytest.raises(ChangesError, match="export the segment in full") as info:
        check_build(cursor, GREEN)
    assert info.value.moved and not info.value.missing


def test_a_cursor_without_a_tag_is_not_checked_and_a_bad_tag_is_malformed() -> None:
    check_build("0:7", GREEN)
    for bad in ("0:7@", "0:7@xyz", "0:7@0123456789"):
        with pytest.raises(ChangesError, match="malformed cursor"):
            parse_cursor(bad, [0])
