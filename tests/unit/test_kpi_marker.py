"""The customer's KPI marker (`_kpi`) in its coded form: lossless, small, and an older or unknown form refused
in one line naming the fix."""

from __future__ import annotations

import hashlib
from datetime import date

import msgspec
import orjson
import pytest

from segmentation.kpi_tracking import Tracker
from segmentation.state_codec import nul_free
from streams.store.kpi_ops import VERSION, MarkerFormatError, check_stored, decode, encode
from streams.store.preset_names import PRESET
from streams.store.stored_state import StoredFormatError

DAY = date(2026, 3, 1)
# written by 8232a7b's kpi_ops.encode for Tracker("2026-03", (("lifecycle", "active"), ("value", None)), True,
# (("lifecycle", "new", DAY), ("audience:vip", "member", DAY))): msgpack names, no version byte
OLDER = (
    "\udc94\udca72026-03\x01\udc94\udca9lifecycle\udca6active\udca5value\udcc0\udc91\udc95\udcce\udcc1\x0bI\\"
    "\udca9lifecycle\udca3new\udcacaudience:vip\udca6member"
)
FIX = "rebuild the namespace with `segstream replay`"


def test_every_marker_comes_back_whatever_its_names() -> None:
    pending = (
        ("lifecycle", "new", DAY),  # preset grid and segment: codes
        ("value", "gold", DAY),  # a preset grid with a segment of its own: the name
        ("audience:vip", "member", date(2026, 3, 2)),  # a grid outside the preset: names
        ("loyalty", "gold", date(2026, 3, 2)),
    )
    for tracker in (
        Tracker(),
        Tracker(
            "2026-03", (("lifecycle", "active"), ("value", None), ("tier", None), ("rfm", "x")), True, pending
        ),
        Tracker("2026-W10", (), False, pending, fresh=True),
    ):
        assert decode(encode(tracker)) == tracker
        assert "\x00" not in encode(tracker)


def test_a_new_customers_marker_is_less_than_half_its_named_form() -> None:
    tracker = Tracker("2026-03", (("lifecycle", "active"), ("value", None)), True, (
        ("lifecycle", "new", DAY), ("audience:vip", "member", DAY)))  # fmt: skip
    assert len(encode(tracker)) == 45 < len(OLDER) == 76
    every_grid = tuple((grid, segments[-1], DAY) for grid, segments in PRESET.items() if segments)
    coded = encode(Tracker("2026-03", (), False, every_grid, fresh=True)).encode("utf-8", "surrogateescape")
    assert len(every_grid) == 13 and len(coded) == 2 * 13 + 21  # a (grid, segment) pair costs 2 bytes


def test_a_marker_of_an_earlier_segstream_is_refused_in_one_line() -> None:
    with pytest.raises(
        MarkerFormatError, match=r"^customer KPI marker '_kpi' was written by an earlier segstream"
    ):
        decode(OLDER)
    with pytest.raises(StoredFormatError) as refused:
        check_stored({"state": "x", "_kpi": OLDER}, "old")
    assert str(refused.value) == (
        f"namespace 'old': customer KPI marker '_kpi' was written by an earlier segstream: {FIX}"
    )
    with pytest.raises(
        StoredFormatError, match=f"^namespace 'n': customer KPI marker '_kpi' is of an unknown format: {FIX}"
    ):
        check_stored({"_kpi": "\x07later"}, "n")
    check_stored({"state": "x"}, "n")  # no marker yet: nothing to continue
    check_stored({"_kpi": encode(Tracker("2026-03"))}, "n")


def test_a_damaged_marker_is_an_error_not_a_wrong_count() -> None:
    raw = nul_free(msgspec.msgpack.encode(["2026-03", 0, [], [[DAY.toordinal(), 0, None]]]))
    with pytest.raises(ValueError, match=r"^customer KPI marker '_kpi' is damaged$"):  # entered no segment
        decode((VERSION + raw).decode("utf-8", "surrogateescape"))


def test_the_name_table_is_frozen_with_the_marker_and_history_formats() -> None:
    """Codes are indexes in this table: a change here silently renames the segments of every stored marker
    and history, so it needs new VERSIONs of both (kpi_ops.py, history_format.py) and a new digest here."""
    table = orjson.dumps(list(PRESET.items()))
    assert hashlib.sha256(table).hexdigest()[:16] == "d8afd6520fe00e82"
