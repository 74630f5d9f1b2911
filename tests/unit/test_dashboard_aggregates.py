"""The dashboard's aggregates from the read-side keys: sizes per day from today's counts and the day flows,
the transition matrix from the per-day (from, to) counters; and the vendored chart library's digest."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path

import pytest

from streams.read.dashboard.aggregates import moves_matrix, parse_day, sizes_from_flows
from streams.read.reader import BadRequest
from streams.store.weeks import split_days

SEGMENTS = ("new", "active", "at_risk")
# Three customers: two enter `new` on the 1st, one moves new -> active on the 3rd, one active -> at_risk and
# a third enters `new` on the 5th. Today: new 2, active 0, at_risk 1.
FLOWS = {
    "2026-01-01": {"new": {"in": 2, "out": 0}},
    "2026-01-03": {"new": {"in": 0, "out": 1}, "active": {"in": 1, "out": 0}},
    "2026-01-05": {"active": {"in": 0, "out": 1}, "at_risk": {"in": 1, "out": 0}, "new": {"in": 1, "out": 0}},
}
CURRENT = {"new": 2, "active": 0, "at_risk": 1}


def test_sizes_walk_back_from_todays_counts() -> None:
    days, sizes = sizes_from_flows(SEGMENTS, CURRENT, FLOWS, None, None)
    assert days == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]
    assert sizes == {"new": [2, 2, 1, 1, 2], "active": [0, 0, 1, 1, 0], "at_risk": [0, 0, 0, 0, 1]}


def test_a_range_is_clipped_to_the_days_with_flows() -> None:
    days, sizes = sizes_from_flows(SEGMENTS, CURRENT, FLOWS, date(2026, 1, 3), date(2026, 1, 4))
    assert days == ["2026-01-03", "2026-01-04"] and sizes["active"] == [1, 1] and sizes["new"] == [1, 1]
    days, sizes = sizes_from_flows(SEGMENTS, CURRENT, FLOWS, date(1, 1, 1), date(2026, 1, 2))
    assert days == ["2026-01-01", "2026-01-02"]
    assert sizes == {"new": [2, 2], "active": [0, 0], "at_risk": [0, 0]}
    days, sizes = sizes_from_flows(SEGMENTS, CURRENT, FLOWS, date(2026, 1, 4), date(9999, 12, 31))
    assert days == ["2026-01-04", "2026-01-05"] and sizes["at_risk"] == [0, 1]
    empty: tuple[list[str], dict[str, list[int]]] = ([], {"new": [], "active": [], "at_risk": []})
    assert sizes_from_flows(SEGMENTS, CURRENT, {}, None, None) == empty
    assert sizes_from_flows(SEGMENTS, CURRENT, FLOWS, date(2026, 1, 5), date(2026, 1, 1)) == empty


def test_moves_sum_the_days_of_the_range_over_partitions() -> None:
    days = [
        {"->new:2026-01-01": 1, "new>active:2026-01-03": 1, "active>at_risk:2026-01-05": 1},
        {"->new:2026-01-01": 1, "->new:2026-01-05": 1, "new>-:2026-01-06": 1},
    ]  # two partitions' moves, as the `t:` week keys hold them (their fields coded, bytes as Redis replies)
    rows = [
        (week, {k.encode(): str(v).encode() for k, v in fields.items()})
        for partition in days
        for week, fields in split_days(partition).items()
    ]
    cells, total = moves_matrix(SEGMENTS, rows, None, None)
    assert cells == [("new", "active", 1), ("new", "-", 1), ("active", "at_risk", 1), ("-", "new", 3)]
    assert total == 6
    cells, total = moves_matrix(SEGMENTS, rows, date(2026, 1, 2), date(2026, 1, 5))
    assert cells == [("new", "active", 1), ("active", "at_risk", 1), ("-", "new", 1)] and total == 3
    assert moves_matrix(SEGMENTS, rows, date(2026, 1, 5), date(2026, 1, 2)) == ([], 0)


def test_days_are_strict() -> None:
    assert parse_day("2026-02-28", "from") == date(2026, 2, 28)
    assert parse_day(None, "from") is None
    for bad in ("", "2026-2-28", "20260228", "2026-02-30", "tomorrow", "\uff12\uff10\uff12\uff16-02-28"):
        with pytest.raises(BadRequest, match="from must be a day"):
            parse_day(bad, "from")


def test_the_vendored_chart_library_is_the_recorded_one() -> None:
    static = Path(__file__).parents[2] / "streams" / "read" / "dashboard" / "static"
    recorded = re.search(r"`([0-9a-f]{64})`", (static / "VENDORED.md").read_text(encoding="utf-8"))
    assert recorded is not None
    assert hashlib.sha256((static / "echarts.min.js").read_bytes()).hexdigest() == recorded.group(1)
    page = (static / "index.html").read_text(encoding="utf-8")
    assert "http" not in page.replace("http://www.w3.org", "")  # no CDN, no other origin
