"""Canonical instants: UTC text whatever the offset, bounded memo, naive times refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from segmentation import instants
from segmentation.instants import iso, parse_iso
from tests.unit.seg_helpers import day


def test_iso_is_utc_and_parse_is_its_inverse() -> None:
    paris = day(0).astimezone(timezone(timedelta(hours=1)))
    assert iso(paris) == "2026-01-01T00:00:00+00:00"
    assert iso(day(0, microseconds=5)) == "2026-01-01T00:00:00.000005+00:00"
    assert parse_iso("2026-01-01T01:00:00+01:00") == day(0)
    with pytest.raises(ValueError, match="naive timestamp"):
        parse_iso("2026-01-01T00:00:00")


def test_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instants, "_TEXTS_LIMIT", 2)
    monkeypatch.setattr(instants, "_TEXTS", {})
    texts = [iso(day(n)) for n in range(5)]
    assert texts == [day(n).isoformat() for n in range(5)]
    assert len(instants._TEXTS) <= 2
    assert iso(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00+00:00"


def test_day_memo_is_bounded_and_equals_isoformat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instants, "_TEXTS_LIMIT", 2)
    monkeypatch.setattr(instants, "_DAYS", {})
    days = [day(n).date() for n in range(5)] + [date(999, 3, 5), date(1, 1, 1)]
    assert [instants.day_text(d) for d in days * 2] == [d.isoformat() for d in days * 2]
    assert len(instants._DAYS) <= 2
