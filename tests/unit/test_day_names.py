"""Coded day counter field names (streams/store/day_names.py): every name comes back exactly, coded or not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.store.day_names import TOKENS, decode, encode
from streams.store.preset_names import PRESET


def test_the_default_names_are_coded_short() -> None:
    assert encode("potential_loyalist:revenue") == "15:1"
    assert encode("need_attention>at_risk") == "14>9"
    assert encode("->new") == "->7"  # '-': no segment
    assert encode("member:in") == "58:4"


def test_the_table_is_frozen() -> None:
    """Stored names depend on it: a change to PRESET or DAY_METRICS that moves a code must fail here."""
    assert TOKENS[:8] == ("orders", "revenue", "converted", "churned", "in", "out", "prospect", "new")
    assert (TOKENS[15], TOKENS[21], TOKENS[41], TOKENS[47]) == (
        "potential_loyalist",
        "none",
        "unknown",
        "detractor",
    )
    assert (len(TOKENS), TOKENS[-1]) == (60, "not_member")


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


def test_a_code_beyond_the_table_is_refused_not_misread() -> None:
    with pytest.raises(ValueError, match="has a code this segstream does not know"):
        decode(f"{len(TOKENS)}:1")
