"""A sync cursor names the build of the namespace it was given for (`@<tag>`): a cursor of another build is
refused as `moved` (exit 2, HTTP 409), one without a tag (an earlier version's) is not checked."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from streams.read.changes import ChangesError, Window, _after_retention, check_build, parse_cursor
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


def test_a_malformed_tag_is_malformed_not_another_namespace() -> None:
    """It was answered "another namespace ... export in full" (409): a needless full export (review)."""
    check_build("0:7@not-a-tag", GREEN)  # not judged here: `parse_cursor` refuses it as malformed
    with pytest.raises(ChangesError, match="malformed cursor") as info:
        parse_cursor("0:7@not-a-tag", [0])
    assert not info.value.moved


class _Consumer:
    """What `_after_retention` asks of aiokafka's consumer: the partition's first offset, and a seek."""

    def __init__(self, first: int) -> None:
        self.first: int = first
        self.sought: int | None = None

    async def beginning_offsets(self, tps: list[object]) -> dict[object, int]:
        return {tp: self.first for tp in tps}

    def seek(self, tp: object, offset: int) -> None:
        self.sought = offset


def test_after_retention_goes_on_only_past_look_back_records() -> None:
    tp = TopicPartition("t", 0)
    consumer = _Consumer(first=5)  # records 0..4 deleted: all look-back, the period starts at 8
    assert asyncio.run(_after_retention(consumer, tp, start=8, position=3)) == 5 and consumer.sought == 5
    with pytest.raises(ChangesError, match="retention removed records of the period") as info:
        asyncio.run(_after_retention(_Consumer(first=9), tp, start=8, position=3))
    assert info.value.missing
    # nothing deleted below the position: the log was cut at its end or the topic made again, not retention;
    # it re-read records already read, then polled for ever (review)
    with pytest.raises(ChangesError, match="no longer holds offset 12"):
        asyncio.run(_after_retention(_Consumer(first=0), tp, start=8, position=12))
