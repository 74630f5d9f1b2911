"""Day counters per ISO week (streams/store/weeks.py): a day's week and weekday and back, across year ends."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from streams.store.day_names import period_field
from streams.store.stored_state import StoredFormatError
from streams.store.weeks import (
    FORMAT,
    by_grid,
    check_format,
    day_field,
    day_of,
    period_years,
    periods_of_range,
    split_days,
    stored_field,
    week_of,
    weeks_of_range,
)


@pytest.mark.parametrize(
    ("day", "week", "weekday"),
    [
        ("2026-01-01", "2026-W01", "4"),  # a Thursday: week 1 of 2026 starts on Monday 2025-12-29
        ("2025-12-29", "2026-W01", "1"),
        ("2027-01-03", "2026-W53", "7"),  # 2026 has 53 ISO weeks
        ("2027-01-04", "2027-W01", "1"),
        ("2026-03-01", "2026-W09", "7"),
        ("2026-03-02", "2026-W10", "1"),
        ("0999-03-05", "0999-W10", "2"),  # four digits before year 1000, as the day's own ISO text
        ("0001-01-01", "0001-W01", "1"),
    ],
)
def test_a_day_is_named_by_its_iso_week_and_weekday(day: str, week: str, weekday: str) -> None:
    assert week_of(day) == (week, weekday)
    assert day_of(week, weekday) == day
    assert stored_field("new:in", weekday) == f"(%{weekday}"  # coded short (day_names.TOKENS)
    assert day_field(week, f"(%{weekday}") == f"new:in:{day}"
    assert day_field(week, f"vip:4:{weekday}") == f"vip:in:{day}"  # a custom segment is stored as itself


def test_every_day_of_three_years_round_trips_and_a_week_holds_seven() -> None:
    days = [(date(2025, 1, 1) + timedelta(days=n)).isoformat() for n in range(3 * 366)]
    weeks: dict[str, set[str]] = {}
    for day in days:
        week, weekday = week_of(day)
        assert day_of(week, weekday) == day
        weeks.setdefault(week, set()).add(weekday)
    assert all(len(w) == 7 for w in list(weeks.values())[1:-1])


def test_the_weeks_of_a_range_are_the_known_ones_holding_one_of_its_days() -> None:
    known = {"2025-W52", "2026-W01", "2026-W02", "2026-W09", "2026-W10", "2026-W53"}
    assert weeks_of_range(known, date(2025, 12, 31), date(2026, 1, 5)) == ["2026-W01", "2026-W02"]
    assert weeks_of_range(known, None, date(2026, 1, 4)) == ["2025-W52", "2026-W01"]
    assert weeks_of_range(known, date(2026, 3, 1), None) == ["2026-W09", "2026-W10", "2026-W53"]
    assert weeks_of_range(known, date(2026, 3, 2), date(2026, 3, 1)) == []
    assert weeks_of_range(known, None, None) == sorted(known)


def test_period_years_cover_the_calendar_years_of_the_weeks_days() -> None:
    assert period_years({"2026-W01", "2026-W10"}) == ["2025", "2026", "2027"]
    assert period_years({week_of("0999-03-05")[0]}) == ["0998", "0999", "1000"]  # an early date's week too
    assert periods_of_range(["2025", "2026", "2027", "2028"], date(2026, 3, 1), date(2026, 5, 31)) == [
        "2025",
        "2026",
        "2027",
    ]
    assert periods_of_range(["2025", "2026"], None, None) == ["2025", "2026"]


def test_day_named_fields_split_per_week_and_back() -> None:
    fields = {"new:in:2026-01-01": 3, "new:out:2026-01-05": 1, "a>b:2025-12-29": 2}
    stored = split_days(fields)
    assert stored == {"2026-W01": {"(%4": 3, "a>b:1": 2}, "2026-W02": {"(&1": 1}}
    weeks = {("g", week): list(row.items()) for week, row in stored.items()}
    periods = {("g", "2026"): [(period_field("new", "retained", "2026-01"), 4)]}  # `7:a01`, coded
    assert dict(by_grid(weeks, periods)["g"]) == {**fields, "new:retained:2026-01": 4}


def test_only_a_partition_never_committed_or_kept_per_week_is_accepted() -> None:
    check_format("ns", None, None)
    check_format("ns", b"12", FORMAT.encode())
    check_format("ns", "12", FORMAT)
    # week: names in full; week-short: segments as `segment:<grid>` in the customer hashes
    older = ("12", "week-short/grid-named/moves/due-chunks")  # retention counters named in full
    for offset, kept in (("12", None), ("12", "week"), ("3", "week-short"), older):
        with pytest.raises(
            StoredFormatError, match="namespace 'ns' keeps its day counters or customer fields in an older"
        ):
            check_format("ns", offset, kept)
    # a format no release before wrote: a later one's, not called "earlier" (review of 7 December 2026)
    later: tuple[tuple[object, object], ...] = ((None, "month"), (b"0", b"x"), ("1", FORMAT + "/v9"))
    for at, value in later:
        with pytest.raises(StoredFormatError, match=r"in format '.*', which this segstream does not know"):
            check_format("ns", at, value)
