"""State <-> customer hash (storage format 2): readable fields, packed state, lossless round trip."""

from __future__ import annotations

from typing import Any

import pytest

from segmentation import CustomerState
from segmentation.state_codec import unpack_state
from segmentation.state_fields import state_fields, texts_of
from segmentation.state_mapping import (
    StorageFormatError,
    is_segment,
    packed_bytes,
    state_from_mapping,
    state_to_mapping,
)
from tests.unit.seg_helpers import day, ev, purchase, run


def _rich() -> CustomerState:
    state, _ = run(
        [
            purchase(day(0), "123.45", channel="store"),
            ev("email_open", day(1)),
            ev("email_click", day(2)),
            ev("survey_response", day(3), score=7),
            ev("profile_update", day(4), birth_year=1990, gender="female", region="SE", household=2),
            ev("loyalty", day(5), points_delta=40, tier="gold"),
            ev("email_unsubscribe", day(6), event_id='id with "quotes" and é'),
        ]
    )
    return state


def test_round_trip_is_lossless() -> None:
    state = _rich()
    assert state_from_mapping(state_to_mapping(state)) == state
    assert state_from_mapping(state_to_mapping(CustomerState.new("x"))) == CustomerState.new("x")


def test_the_hash_holds_the_readable_fields_and_the_packed_state() -> None:
    """Storage format 4: exactly the documented readable fields, with format 1's texts, each grid's segment
    under the grid's name, the time as whole epoch seconds, nothing empty and no `not_member`, plus
    `state`."""
    state = _rich()
    mapping = state_to_mapping(state)
    assert {k: v for k, v in mapping.items() if k != "state"} == {
        "lifecycle": "new", "rfm": "new", "value": "medium",
        "email": "unsubscribed", "channel": "store", "age_band": "age_35_44",
        "region": "north",
        "satisfaction": "passive", "category": "none", "promotion": "full_price",
        "orders": "1", "monetary_minor": "12345", "last_purchase_at": "1767225600",
    }  # fmt: skip
    assert state.audiences == (
        ("unhappy_recent_buyers", "not_member"), ("vip_recent", "not_member"), ("win_back", "not_member")
    )  # fmt: skip
    assert state_from_mapping(mapping) == state
    view = state_fields(state_from_mapping(mapping))  # what is no longer readable is still in `state`
    assert (view["clock"], view["currency"]) == ("2026-01-07T00:00:00+00:00", "EUR")
    assert (view["monetary"], view["last_purchase_at"]) == ("123.45", "2026-01-01T00:00:00+00:00")
    assert view["definitions_version"] == state.definitions_version


def test_the_readers_view_keeps_format_1_names_and_texts() -> None:
    state = _rich()
    fields = state_fields(state)
    assert (fields["rfm:r"], fields["rfm:f"], fields["rfm:m"]) == ("5", "1", "2")
    assert fields["lifecycle_since"] == "2026-01-01T00:00:00+00:00"
    assert fields["email:unsubscribed"] == "1"
    assert fields["channel:store"] == "1"
    assert fields["gender"] == "female"
    assert fields["reactivated_at"] == ""
    assert fields["next_due_at"] == "2026-01-31T00:00:00+00:00"
    assert fields["email:open_score"] == repr(state.email_open_score)
    ids = [f"e{n}" for n in range(int(state.recent_event_ids[0][1:]), int(state.recent_event_ids[0][1:]) + 6)]
    assert fields["recent_event_ids"] == str([*ids, "DNFnoUmV98ER"]).replace("'", '"')  # a long id: digest
    assert all(isinstance(value, str) for value in fields.values())
    keys = ["orders", "monetary", "segment:audience:win_back", "segment:audience:nope", "recent_event_ids"]
    assert texts_of(state, keys) == [fields.get(k) for k in keys]


def test_readable_storage_and_history_fields_are_ignored() -> None:
    state = _rich()
    mapping = {
        **state_to_mapping(state),
        "_offset": "12",
        "_kpi": "x",
        "history": "\udcff",
        "monetary": "999",
    }
    assert state_from_mapping(mapping) == state


def test_a_format_1_hash_is_refused_with_the_fix() -> None:
    with pytest.raises(
        StorageFormatError, match="storage format 1, written by an earlier segstream: rebuild"
    ):
        state_from_mapping(state_fields(_rich()))
    with pytest.raises(ValueError, match="customer hash has no 'state' field"):
        state_from_mapping({"rfm": "new"})
    with pytest.raises(ValueError, match="field 'state' is not a packed state"):
        state_from_mapping({"state": "\ud800"})
    with pytest.raises(ValueError, match="packed customer state is damaged"):
        state_from_mapping({"state": "\x05"})
    for head in ("\x02", "\x03", "\x04"):  # 2 and 3 stored `monetary`, every `not_member`; 4 a text window
        with pytest.raises(StorageFormatError, match=f"storage format {ord(head)} .*segstream replay"):
            state_from_mapping({"state": head, "rfm": "new"})


def test_a_format_2_hash_is_refused_with_the_fix() -> None:
    """Up to 4 December 2026 every segment was `segment:<grid>`: read as now, its segments would be None."""
    format_2 = {("segment:" + k if is_segment(k) else k): v for k, v in state_to_mapping(_rich()).items()}
    with pytest.raises(
        StorageFormatError, match=r"names its segments `segment:<grid>`, written by an earlier.*replay"
    ):
        state_from_mapping(format_2)


def test_segments_are_stored_once_in_the_readable_fields() -> None:
    """`state` packs no segment the readable fields hold; those it cannot hold exactly stay packed."""
    state = _rich()
    packed = unpack_state(state_to_mapping(state)["state"].encode("utf-8", "surrogateescape"))
    no_segments: dict[str, Any] = {f: None for f in state._fields if f.startswith("seg_")}
    assert packed == state._replace(**no_segments)  # three `not_member` answers: packed, not readable
    members = state._replace(audiences=(("a", "member"), ("b", "not_member"), ("c", "member")))
    assert unpack_state(packed_bytes(members)).audiences == (("b", "not_member"),)
    stored = state_to_mapping(members)
    assert stored["audience:a"] == "member" and "audience:b" not in stored
    assert state_from_mapping(state_to_mapping(members)) == members
    odd = state._replace(seg_rfm="", audiences=(("b", "member"), ("a", "not_member")))
    mapping = state_to_mapping(odd)
    kept = unpack_state(mapping["state"].encode("utf-8", "surrogateescape"))
    assert (kept.seg_rfm, kept.seg_value, kept.audiences) == ("", None, odd.audiences)
    assert state_from_mapping(mapping) == odd
    twice = state._replace(audiences=(("a", "member"), ("a", "not_member")))
    assert state_from_mapping(state_to_mapping(twice)) == twice
    bare = state_from_mapping({"state": mapping["state"]})  # a hash without its readable fields: no segment
    assert bare == odd._replace(**{f: v for f, v in no_segments.items() if f != "seg_rfm"})


def test_a_stored_field_is_a_segment_exactly_when_the_readers_see_a_grid_there() -> None:
    """Membership, KPIs and crossings follow `is_segment` (streams/store/indexes.py): every grid and audience
    of the definitions must be one, and no figure, the packed state or a store field may be."""
    view = state_fields(_rich())
    grids = {k.removeprefix("segment:") for k in view if k.startswith("segment:")}
    assert {"lifecycle", "rfm", "value", "audience:win_back", "audience:vip_recent"} <= grids
    for key in state_to_mapping(_rich()):
        assert is_segment(key) == (key in grids), key
    for key in ("state", "history", "_kpi", "_offset", "_o", "orders", "monetary_minor", "last_purchase_at"):
        assert not is_segment(key), key
    assert is_segment("audience:any_other_name")  # audiences are named by the definitions file
