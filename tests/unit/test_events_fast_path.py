"""parse_event's shortcuts (per-type validator, orjson without the float re-check) change nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation import event_values
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
    parsed = event_values.timestamp(text)
    assert parsed.tzinfo is UTC
    assert parsed == datetime.fromisoformat(text)


def _attempt(text: str, positive: bool) -> str:
    try:
        return str(event_values._amount(text, positive))
    except Exception as exc:
        return str(exc)


@pytest.mark.parametrize(
    ("text", "positive", "outcome"),
    [
        ("12.50", False, "12.50"),
        ("12.50", True, "12.50"),
        ("1e2", False, "100"),
        ("-0", False, "0"),
        ("-0", True, "must be > 0"),
        ("0", True, "must be > 0"),
        ("0.00", False, "0.00"),
        ("0.00", True, "must be > 0"),
        ("1.23456", False, "must have at most 4 decimal places"),
    ],
)
def test_remembered_amounts_give_what_a_first_parse_gives(text: str, positive: bool, outcome: str) -> None:
    """Each amount twice: the second call answers from the memo, and must answer the same."""
    event_values._AMOUNTS.clear()
    assert _attempt(text, positive) == _attempt(text, positive) == outcome
    assert (text in event_values._AMOUNTS) is outcome[0].isdigit()  # only accepted texts are remembered
    _attempt(text, False)  # remembered by a ">= 0" field: a "> 0" field still refuses zero
    assert _attempt(text, positive) == outcome


def test_the_amount_memo_is_bounded() -> None:
    """Filled past its real limit (a patched limit would not reach the mypyc-compiled module)."""
    event_values._AMOUNTS.clear()
    for cents in range(event_values._AMOUNTS_LIMIT + 10):
        assert event_values._amount(f"{cents // 100}.{cents % 100:02d}", False) == Decimal(cents).scaleb(-2)
        assert len(event_values._AMOUNTS) <= event_values._AMOUNTS_LIMIT
    assert 0 < len(event_values._AMOUNTS) <= 10


def test_a_dict_is_validated_without_a_copy_and_left_untouched() -> None:
    raw = event("purchase", amount="12.30")
    before = dict(raw)
    assert parse_event(raw) == parse_event(before) == parse_event(json.dumps(before).encode())
    assert raw == before


def _verdict(check: Callable[[object], datetime], text: str) -> object:
    try:
        parsed = check(text)
    except Exception as exc:  # pydantic's custom error type
        return ("error", str(exc))
    return ("ok", parsed, parsed.tzinfo)


_FIELD_CHARS = "0123456789" * 3 + "٣２²⁹ x+-:.TZ\x00é"


@settings(max_examples=3000, deadline=None)
@given(
    fields=st.lists(st.text(_FIELD_CHARS, min_size=1, max_size=5), min_size=8, max_size=8),
    shape=st.sampled_from(["{}-{}-{}T{}:{}:{}+{}:{}", "{}-{}-{}T{}:{}:{}-{}:{}", "{}-{}-{}T{}:{}:{}Z"]),
)
def test_the_canonical_timestamp_shortcut_agrees_with_the_full_checks(fields: list[str], shape: str) -> None:
    """Separators in place but anything between them (other digits, letters, lengths): same verdict."""
    text = shape.format(*fields)
    assert _verdict(event_values.timestamp, text) == _verdict(event_values.checked_timestamp, text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-05T10:31:07+00:00", "2026-01-05T10:31:07Z", "2026-01-05T10:31:07-05:30",
        "0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-01:00", "2026-02-30T10:31:07+00:00",
        "2026-01-05T24:00:00+00:00", "2026-01-05T10:31:07+24:00", "2026-01-05T10:31:60Z",
        "2026-W01-1T10:31:07+00:00", "2026-01-05T10:31:07+0100", "2026-01-05T10:31:07.5Z",
        "2026-01-05T10:31:07+00:0٣", "٢٠٢٦-01-05T10:31:07+00:00", "2026-01-05T1:31:07+00:00Z",
        "2026-01-05t10:31:07z", "2026-01-05t10:31:07+00:00", "2026-01-05T10:31:07z",
    ],
)  # fmt: skip
def test_the_canonical_timestamp_shortcut_on_edge_cases(text: str) -> None:
    assert _verdict(event_values.timestamp, text) == _verdict(event_values.checked_timestamp, text)
