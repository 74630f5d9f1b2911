"""Coded day counter field names (streams/store/day_names.py): every name and weekday come back exactly,
in the short form, the long form or as itself; so do the retention periods' fields in their year's key."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmentation.kpi_definitions import period_of
from segmentation.kpi_figures import PERIOD_METRICS
from streams.store.day_names import TOKENS, decode, encode, field, named, period_field, period_named
from streams.store.preset_names import PRESET


def test_the_default_names_are_coded_short() -> None:
    assert field("potential_loyalist:revenue", "3") == '0"3'
    assert field("need_attention>at_risk", "7") == "/*7"
    assert field("->new", "1") == "^(1"  # '-': no segment
    assert field("member:in", "5") == "\\%5"  # the alphabet skips `:`
    assert field("new:in", "4") == "(%4"
    assert [named(f) for f in ('0"3', "/*7", "^(1")] == [
        ("potential_loyalist:revenue", "3"),
        ("need_attention>at_risk", "7"),
        ("->new", "1"),
    ]


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("vip:revenue", "vip:1:2"),  # a custom segment: the long form
        ("new>in", "7>4:2"),  # a move to a segment named like a direction: `>` would read as `:`
        ("new:new", "7:7:2"),  # a segment where a metric goes: `:` would read as `>`
        ("new:in:x", "7:4:x:2"),  # three tokens
        ("new", "7:2"),
        ("", ":2"),
    ],
)
def test_other_names_take_the_long_form(name: str, stored: str) -> None:
    assert field(name, "2") == stored
    assert named(stored) == (name, "2")


def test_the_table_is_frozen() -> None:
    """Stored names depend on it: a change to PRESET or DAY_METRICS that moves a code must fail here."""
    assert TOKENS[:8] == ("orders", "revenue", "converted", "churned", "in", "out", "prospect", "new")
    assert (TOKENS[15], TOKENS[21], TOKENS[41], TOKENS[47]) == (
        "potential_loyalist",
        "none",
        "unknown",
        "detractor",
    )
    assert (len(TOKENS), TOKENS[-2], TOKENS[-1]) == (61, "not_member", "-")


def test_every_default_segment_and_day_metric_has_a_code() -> None:
    names = {s for segments in PRESET.values() for s in segments}
    assert names <= set(TOKENS)
    assert {"orders", "revenue", "converted", "churned", "in", "out"} <= set(TOKENS)
    assert len(set(TOKENS)) == len(TOKENS)


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("vip:revenue", "vip:1"),  # a custom segment: as itself
        ("7:in", "~7:4"),  # a segment named like a code: escaped
        ("~x>new", "~~x>7"),  # a segment starting with the escape: escaped
        ("²:in", "²:4"),  # unicode digits are not codes
        ("a::b", "a::b"),
        ("", ""),
    ],
)
def test_names_that_could_read_as_codes_are_escaped(name: str, stored: str) -> None:
    assert encode(name) == stored
    assert decode(stored) == name


@given(st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)), min_size=1, max_size=4))
def test_any_name_round_trips(tokens: list[str]) -> None:
    name = ":".join(tokens[:2]) + (">" + ">".join(tokens[2:]) if tokens[2:] else "")
    assert decode(encode(name)) == name


@given(
    st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)), min_size=1, max_size=3),
    st.sampled_from(":>"),
    st.sampled_from("1234567"),
)
def test_any_field_round_trips(tokens: list[str], separator: str, weekday: str) -> None:
    name = separator.join(tokens)
    stored = field(name, weekday)
    assert named(stored) == (name, weekday)
    assert len(stored) == 3 or ":" in stored  # short, or long with its weekday after a `:`


def test_a_field_this_segstream_cannot_have_written_is_refused_not_misread() -> None:
    for stored in (f"{len(TOKENS)}:1", "((", "((((", "(\x7f3", "~(3"):
        with pytest.raises(ValueError, match="has a code this segstream does not know"):
            named(stored)


def test_a_retention_counter_is_coded_in_a_few_characters() -> None:
    stored = period_field("potential_loyalist", "cohort_revenue", "2026-W10")
    assert stored == "15:cW10"
    assert period_named(stored, "2026") == "potential_loyalist:cohort_revenue:2026-W10"
    assert period_field("vip", "retained", "2026-03") == "vip:a03"  # a custom segment: as itself
    assert period_named("vip:a03", "2026") == "vip:retained:2026-03"


@given(
    st.one_of(st.sampled_from(TOKENS), st.text(min_size=1, max_size=8).filter(lambda t: ":" not in t)),
    st.sampled_from(PERIOD_METRICS),
    st.dates(min_value=date(1000, 1, 4)),  # a four-digit ISO year: the key's
    st.sampled_from(["day", "week", "month"]),
)
def test_any_retention_counter_round_trips_through_its_year_s_key(
    segment: str, metric: str, day: date, unit: str
) -> None:
    period = period_of(day, unit)
    assert period_named(period_field(segment, metric, period), period[:4]) == f"{segment}:{metric}:{period}"


def test_a_retention_field_this_segstream_cannot_have_written_is_refused() -> None:
    for stored in ("vip", "vip:x03", ":a03", f"{len(TOKENS)}:a03"):
        with pytest.raises(ValueError, match="code this segstream does not know"):
            period_named(stored, "2026")


def test_a_week_asked_again_is_the_same_text() -> None:
    """period_of memoises weeks: the second ask of a day is answered from the memo (branch kept covered)."""
    first = period_of(date(2026, 3, 5), "week")
    assert first == "2026-W10" and period_of(date(2026, 3, 5), "week") is first
