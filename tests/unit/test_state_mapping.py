"""State <-> flat string mapping: exact field names, lossless round trip, reserved and derived keys."""

from __future__ import annotations

import pytest

from segmentation import CustomerState
from segmentation.state_mapping import state_from_mapping, state_to_mapping
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


def test_field_names_readers_rely_on() -> None:
    mapping = state_to_mapping(_rich())
    assert mapping["segment:lifecycle"] == "new"
    assert mapping["segment:rfm"] == "new"
    assert mapping["segment:audience:vip_recent"] == "not_member"
    assert (mapping["rfm:r"], mapping["rfm:f"], mapping["rfm:m"]) == ("5", "1", "2")
    assert mapping["orders"] == "1"
    assert mapping["monetary_minor"] == "12345"
    assert mapping["monetary"] == "123.45"
    assert mapping["last_purchase_at"] == "2026-01-01T00:00:00+00:00"
    assert mapping["lifecycle_since"] == "2026-01-01T00:00:00+00:00"
    assert mapping["email:unsubscribed"] == "1"
    assert mapping["channel:store"] == "1"
    assert mapping["gender"] == "female"
    assert mapping["reactivated_at"] == ""
    assert mapping["next_due_at"] == "2026-01-31T00:00:00+00:00"
    assert mapping["email:open_score"] == repr(_rich().email_open_score)
    assert all(isinstance(value, str) for value in mapping.values())


def test_reserved_and_derived_keys_are_ignored() -> None:
    state = _rich()
    mapping = {
        **state_to_mapping(state),
        "_offset": "12",
        "_updated_at": "x",
        "monetary": "999",
        "history": "\x01 ",
    }
    assert state_from_mapping(mapping) == state


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"surprise": "1"}, "unknown state field 'surprise'"),
        ({"orders": "many"}, "state field 'orders'"),
        ({"email:unsubscribed": "yes"}, "expected 0 or 1"),
        ({"clock": "2026-01-01T00:00:00"}, "naive timestamp"),
        ({"recent_event_ids": "[1, 2]"}, "expected a JSON list of strings"),
        ({"recent_event_ids": "{}"}, "expected a JSON list of strings"),
    ],
)
def test_malformed_mapping_is_refused(change: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        state_from_mapping({**state_to_mapping(_rich()), **change})


def test_missing_field_is_refused() -> None:
    mapping = state_to_mapping(_rich())
    del mapping["orders"]
    with pytest.raises(ValueError, match="state field 'orders' is missing"):
        state_from_mapping(mapping)


def test_times_are_normalised_to_utc() -> None:
    state = state_from_mapping(
        {**state_to_mapping(CustomerState.new("x")), "clock": "2026-01-01T02:00:00+02:00"}
    )
    assert state.clock == day(0)
    assert state_to_mapping(state)["clock"] == "2026-01-01T00:00:00+00:00"
