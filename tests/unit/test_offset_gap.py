"""A gap in the offsets a worker accepts (fetched twice from the same place after a seek) is a transaction's
marker when one offset wide, and may be events that retention removed before they were applied when wider:
that case was an INFO line saying the offsets "hold no record" (review of 7 December 2026); it is a WARNING
naming retention now."""

from __future__ import annotations

import logging

import pytest

from streams.store.port import Claim
from streams.worker.offset_order import refetch_from
from streams.worker.ownership import Owned


def _owned() -> Owned:
    return Owned(Claim(0, 1, 9, None, "me"), 9, None)


@pytest.mark.parametrize(
    ("first", "level", "words"),
    [(11, logging.INFO, "a transaction marker"), (50, logging.WARNING, "retention removed")],
)
def test_a_gap_accepted_on_its_second_fetch_says_what_it_may_be(
    caplog: pytest.LogCaptureFixture, first: int, level: int, words: str
) -> None:
    owned = _owned()
    with caplog.at_level(logging.INFO, logger="segstream.worker"):
        assert refetch_from(owned, 9, first) == 10, "refused at first: fetched again from 10"
        assert caplog.records == []
        assert refetch_from(owned, 9, first) is None, "the same gap again: accepted"
    [record] = caplog.records
    assert record.levelno == level and words in record.getMessage()
    assert f"offsets 10..{first - 1} hold no record" in record.getMessage()
