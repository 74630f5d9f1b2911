"""parse_event's shortcuts (per-type validator, orjson without the float re-check) change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation import events as ev
from segmentation.events import EVENT_TYPES, InvalidEvent, parse_event
from tests.unit.test_events import event


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_the_per_type_validator_gives_what_the_union_gives(kind: str) -> None:
    raw = event(kind)
    fast = parse_event(json.dumps(raw).encode())
    slow = ev._ADAPTER.validate_python(ev._decode(json.dumps(raw).encode()))
    assert type(fast) is type(slow)
    assert fast == slow
    assert fast.model_fields_set == slow.model_fields_set
    assert ev.event_to_dict(fast) == ev.event_to_dict(slow)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            event("email_open", campaign_id=""),
            "invalid email_open event: campaign_id: must not be empty (got '')",
        ),
        (event("purchase", amount="-1"), "invalid purchase event: amount: must be >= 0 (got '-1')"),
        (event("web_visit", page=7), "invalid web_visit event: page: must be a string (got 7)"),
    ],
)
def test_errors_still_name_the_event_type(raw: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(json.dumps(raw).encode())
    assert str(info.value) == message


@pytest.mark.parametrize("kind", ["purchase", "refund"])
def test_float_amounts_are_still_exact_after_the_shortcut(kind: str) -> None:
    text = json.dumps(event(kind, amount="@")).replace('"@"', "0.1000")
    assert str(parse_event(text.encode()).amount) == "0.1000"  # type: ignore[union-attr]


def test_an_amount_on_a_type_without_one_is_still_an_unexpected_field() -> None:
    text = json.dumps(event("email_open", amount="@")).replace('"@"', "0.1")
    with pytest.raises(InvalidEvent, match="amount: unexpected field"):
        parse_event(text.encode())


@settings(max_examples=200, deadline=None)
@given(
    when=st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    offset=st.sampled_from(["Z", "+00:00", "-05:30", "+14:00", "+0100"]),
    sep=st.sampled_from(["T", " "]),
)
def test_string_timestamps_are_aware_and_in_utc(when: datetime, offset: str, sep: str) -> None:
    text = when.isoformat(sep=sep) + offset
    parsed = ev._timestamp(text)
    assert parsed.tzinfo is UTC
    assert parsed == datetime.fromisoformat(text)
