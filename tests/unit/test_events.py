"""The event contract: every type parses from bytes, str and dict; every bad input is an InvalidEvent."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentation import events as ev
from segmentation.currencies import CURRENCY_EXPONENT
from segmentation.event_types import EVENT_CLASSES
from segmentation.events import (
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    Event,
    InvalidEvent,
    Item,
    Purchase,
    event_json_schema,
    event_to_dict,
    parse_event,
)

COMMON: dict[str, object] = {
    "event_id": "e-1",
    "customer_id": "c-42",
    "occurred_at": "2026-11-20T14:03:12+01:00",
    "schema_version": 1,
}
EXTRA: dict[str, dict[str, object]] = {
    "purchase": {
        "order_id": "o-1",
        "amount": "129.90",
        "currency": "EUR",
        "channel": "web",
        "items": [{"sku": "s-1", "quantity": 2, "unit_price": "49.95"}, {"sku": "s-2", "quantity": 1}],
        "coupon_used": True,
    },
    "refund": {"order_id": "o-1", "amount": "30", "currency": "JPY"},
    "email_sent": {"campaign_id": "nov"},
    "email_open": {"campaign_id": "nov"},
    "email_click": {},
    "email_unsubscribe": {"campaign_id": None},
    "web_visit": {"page": "/shoes"},
    "app_session": {"duration_seconds": 0},
    "loyalty": {"points_delta": -150, "tier": "gold"},
    "support_contact": {"channel": "chat", "resolved": False},
    "survey_response": {"score": 9, "interests": ["running", "yoga"]},
    "profile_update": {"birth_year": 1984, "gender": "undisclosed", "region": "FR-IDF", "household": 3},
    "customer_erased": {},
}


def event(kind: str, **changes: object) -> dict[str, object]:
    """A valid raw event of `kind`, with fields replaced (or removed, when the value is `...`)."""
    raw = {"type": kind, **COMMON, **copy.deepcopy(EXTRA[kind])}
    for key, value in changes.items():
        if value is ...:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def as_bytes(raw: Mapping[str, object]) -> bytes:
    return json.dumps(raw).encode()


def with_literal(raw: dict[str, object], literal: str) -> bytes:
    """The JSON text of `raw` with the placeholder string "@" replaced by a raw JSON token."""
    return as_bytes(raw).replace(b'"@"', literal.encode())


def purchase(raw: bytes | str | Mapping[str, object]) -> Purchase:
    parsed = parse_event(raw)
    assert isinstance(parsed, Purchase)
    return parsed


def rejected(raw: bytes | str | Mapping[str, object]) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw)
    return info.value


FORMS: dict[str, Callable[[dict[str, object]], bytes | str | Mapping[str, object]]] = {
    "bytes": as_bytes,
    "str": json.dumps,
    "dict": lambda raw: raw,
}


def test_the_table_covers_every_event_type() -> None:
    assert set(EXTRA) == set(EVENT_TYPES)
    assert len(EVENT_TYPES) == len(set(EVENT_TYPES)) == 13


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_every_type_parses_from_every_form(kind: str, form: str) -> None:
    parsed = parse_event(FORMS[form](event(kind)))
    assert parsed.type == kind
    assert (parsed.event_id, parsed.customer_id, parsed.schema_version) == ("e-1", "c-42", 1)
    assert parsed.occurred_at == datetime(2026, 11, 20, 13, 3, 12, tzinfo=UTC)
    assert parsed.occurred_at.tzinfo is UTC


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_only_required_fields_are_needed_and_defaults_apply(kind: str) -> None:
    optional = {"items", "coupon_used", "campaign_id", "page", "duration_seconds", "tier", "interests"}
    optional |= {"birth_year", "gender", "region", "household"}
    parsed = parse_event(event(kind, **dict.fromkeys(optional, ...)))
    assert parsed.type == kind
    for name in optional & set(type(parsed).model_fields):
        assert getattr(parsed, name) == type(parsed).model_fields[name].default


def test_purchase_fields_are_typed_and_exact() -> None:
    p = parse_event(as_bytes(event("purchase")))
    assert isinstance(p, Purchase)
    assert p.amount == Decimal("129.90") and str(p.amount) == "129.90"
    assert p.items == (Item(sku="s-1", quantity=2, unit_price=Decimal("49.95")), Item(sku="s-2", quantity=1))
    assert (p.currency, p.channel, p.coupon_used) == ("EUR", "web", True)


@pytest.mark.parametrize(
    ("json_text", "expected"),
    [
        ("0.1", "0.1"),
        ('"0.1"', "0.1"),
        ("12.50", "12.50"),
        ("123456789012345.6789", "123456789012345.6789"),  # 19 digits: a float would round it
        ('"123456789012345.6789"', "123456789012345.6789"),
        ("999999999999999.9999", "999999999999999.9999"),
        ("7", "7"),
        ("1e2", "100"),
        ('"1.5E+1"', "15"),
        ("1.50000", "1.5000"),
        ("2.5e-3", "0.0025"),
        ("-0", "0"),
        ('"-0.00"', "0.00"),
        ("0e500", "0"),
        ("0e-500", "0.0000"),
    ],
)
def test_amounts_are_exact_decimals(json_text: str, expected: str) -> None:
    amount = purchase(with_literal(event("purchase", amount="@"), json_text)).amount
    assert str(amount) == expected
    assert amount == Decimal(expected)


def test_unit_prices_given_as_json_numbers_are_exact_too() -> None:
    raw = event(
        "purchase", items=[{"sku": "s", "quantity": 1}, {"sku": "t", "quantity": 1, "unit_price": "@"}]
    )
    purchase = parse_event(with_literal(raw, "123456789012345.6789"))
    assert isinstance(purchase, Purchase)
    assert purchase.items[1].unit_price == Decimal("123456789012345.6789")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, "0.1"),
        (12, "12"),
        (Decimal("3.14"), "3.14"),
        (Decimal("5E+1"), "50"),
        (Decimal("1.00000"), "1.0000"),
    ],
)
def test_amounts_from_python_values(value: object, expected: str) -> None:
    assert str(purchase(event("purchase", amount=value)).amount) == expected


def test_amount_handling_ignores_the_callers_decimal_context() -> None:
    with localcontext() as ctx:
        ctx.prec = 3
        assert str(purchase(event("purchase", amount="123456789.12340")).amount) == "123456789.1234"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2026-11-20T14:03:12Z", datetime(2026, 11, 20, 14, 3, 12, tzinfo=UTC)),
        ("2026-11-20T14:03:12.5-05:00", datetime(2026, 11, 20, 19, 3, 12, 500000, tzinfo=UTC)),
        ("2026-11-20 14:03+0530", datetime(2026, 11, 20, 8, 33, tzinfo=UTC)),
        ("2026-11-20t14:03:12z", datetime(2026, 11, 20, 14, 3, 12, tzinfo=UTC)),  # RFC 3339 5.6
        ("2026-11-20t14:03:12.5+01:00", datetime(2026, 11, 20, 13, 3, 12, 500000, tzinfo=UTC)),
        ("2026-11-20T14:03:12.123456789+00:00", datetime(2026, 11, 20, 14, 3, 12, 123456, tzinfo=UTC)),
        (datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamps_are_normalised_to_utc(when: object, expected: datetime) -> None:
    parsed = parse_event(event("email_open", occurred_at=when))
    assert parsed.occurred_at == expected and parsed.occurred_at.tzinfo is UTC


# (case, raw event, field named, fragment of the message)
INVALID: list[tuple[str, dict[str, object], str, str]] = [
    (
        "unknown type",
        event("email_open", type="foo"),
        "type",
        "unknown event type 'foo' (expected one of: purchase,",
    ),
    ("type not a string", event("email_open", type=["x"]), "type", "unknown event type ['x']"),
    ("missing type", event("email_open", type=...), "type", "field required (expected one of: purchase,"),
    ("missing schema_version", event("purchase", schema_version=...), "schema_version", "field required"),
    (
        "unknown schema_version",
        event("purchase", schema_version="v1"),
        "schema_version",
        "unsupported version 'v1'",
    ),
    (
        "version 2",
        event("purchase", schema_version=2),
        "schema_version",
        "unsupported version 2 (supported: 1)",
    ),
    (
        "version 2, new type",
        event("email_open", type="cart", schema_version=2),
        "schema_version",
        "version 2",
    ),
    (
        "missing version, bad type",
        event("email_open", type="x", schema_version=...),
        "schema_version",
        "required",
    ),
    ("version true", event("email_open", schema_version=True), "schema_version", "unsupported version True"),
    ("version 1.0", event("email_open", schema_version=1.0), "schema_version", "unsupported version 1.0"),
    ("missing amount", event("purchase", amount=...), "amount", "field required"),
    ("missing event_id", event("loyalty", event_id=...), "event_id", "field required"),
    ("missing customer_id", event("customer_erased", customer_id=...), "customer_id", "field required"),
    ("missing occurred_at", event("web_visit", occurred_at=...), "occurred_at", "field required"),
    ("missing resolved", event("support_contact", resolved=...), "resolved", "field required"),
    ("extra field", event("email_open", colour="red"), "colour", "unexpected field"),
    (
        "extra item field",
        event("purchase", items=[{"sku": "s", "quantity": 1, "x": 1}]),
        "items[0].x",
        "unexpected",
    ),
    (
        "naive timestamp",
        event("purchase", occurred_at="2026-11-20T14:03:12"),
        "occurred_at",
        "must carry a UTC offset",
    ),
    (
        "naive datetime",
        event("purchase", occurred_at=datetime(2026, 1, 1)),
        "occurred_at",
        "must carry a UTC offset",
    ),
    (
        "date only",
        event("purchase", occurred_at="2026-11-20"),
        "occurred_at",
        "must be an ISO 8601 date-time",
    ),
    (
        "bad ISO",
        event("purchase", occurred_at="20/11/2026 14:03Z"),
        "occurred_at",
        "must be an ISO 8601 date-time",
    ),
    (
        "epoch string",
        event("purchase", occurred_at="1763647392"),
        "occurred_at",
        "must be an ISO 8601 date-time",
    ),
    (
        "epoch number",
        event("purchase", occurred_at=1763647392),
        "occurred_at",
        "must be an ISO 8601 date-time string",
    ),
    (
        "month 13",
        event("purchase", occurred_at="2026-13-20T14:03:12Z"),
        "occurred_at",
        "invalid date-time: month",
    ),
    (
        "before year 1 in UTC",
        event("web_visit", occurred_at="0001-01-01T00:00:00+01:00"),
        "occurred_at",
        "range",
    ),
    ("negative amount", event("purchase", amount="-5"), "amount", "must be >= 0 (got '-5')"),
    ("negative number", event("purchase", amount=-5), "amount", "must be >= 0 (got -5)"),
    ("zero refund", event("refund", amount="0.00"), "amount", "must be > 0"),
    ("NaN string", event("purchase", amount="NaN"), "amount", "must be a decimal number like 12.50"),
    ("NaN decimal", event("purchase", amount=Decimal("NaN")), "amount", "must be a finite number"),
    ("float infinity", event("purchase", amount=float("inf")), "amount", "must be a finite number"),
    ("underscored", event("purchase", amount="1_000"), "amount", "must be a decimal number"),
    ("padded", event("purchase", amount=" 5"), "amount", "must be a decimal number"),
    ("too many decimals", event("purchase", amount="1.00001"), "amount", "at most 4 decimal places"),
    ("too large", event("purchase", amount="1000000000000000"), "amount", "must be below 10^15"),
    ("bool amount", event("purchase", amount=True), "amount", "must be a decimal number or a numeric string"),
    ("list amount", event("refund", amount=[1]), "amount", "must be a decimal number or a numeric string"),
    (
        "unit price decimals",
        event("purchase", items=[{"sku": "s", "quantity": 1, "unit_price": "0.12345"}]),
        "items[0].unit_price",
        "at most 4 decimal places",
    ),
    (
        "unknown currency",
        event("purchase", currency="XYZ"),
        "currency",
        "unknown ISO 4217 currency code (got 'XYZ')",
    ),
    ("fund code", event("refund", currency="XAU"), "currency", "unknown ISO 4217 currency code"),
    ("lower-case currency", event("purchase", currency="eur"), "currency", "upper-case, use 'EUR'"),
    ("currency number", event("purchase", currency=978), "currency", "unknown ISO 4217"),
    (
        "bad channel",
        event("purchase", channel="fax"),
        "channel",
        "must be one of 'web', 'store', 'app' or 'phone'",
    ),
    ("bad support channel", event("support_contact", channel="web"), "channel", "must be one of 'email'"),
    ("score 11", event("survey_response", score=11), "score", "must be <= 10 (got 11)"),
    ("score -1", event("survey_response", score=-1), "score", "must be >= 0"),
    ("empty event_id", event("purchase", event_id=""), "event_id", "must not be empty"),
    ("long event_id", event("purchase", event_id="x" * 129), "event_id", "at most 128 characters"),
    (
        "control char",
        event("email_open", customer_id="c\n42"),
        "customer_id",
        "must not contain control characters",
    ),
    ("bytes id", event("email_open", customer_id=b"c-42"), "customer_id", "must be a string"),
    # one customer must not become two states: " c1", "c1\u00a0" and "c\u200b1" look like "c1"
    ("leading space", event("email_open", customer_id=" c-42"), "customer_id", "leading or trailing"),
    ("only spaces", event("email_open", customer_id="   "), "customer_id", "leading or trailing whitespace"),
    ("trailing nbsp", event("email_open", customer_id="c-42\u00a0"), "customer_id", "trailing whitespace"),
    ("zero width", event("email_open", customer_id="c-\u200b42"), "customer_id", "invisible format"),
    ("byte order mark", event("email_open", customer_id="\ufeffc-42"), "customer_id", "U+FEFF"),
    ("bool score", event("survey_response", score=True), "score", "must be an integer (got True)"),
    (
        "bool quantity",
        event("purchase", items=[{"sku": "s", "quantity": True}]),
        "items[0].quantity",
        "integer",
    ),
    (
        "float quantity",
        event("purchase", items=[{"sku": "s", "quantity": 1.0}]),
        "items[0].quantity",
        "integer",
    ),
    ("bool points", event("loyalty", points_delta=False), "points_delta", "must be an integer"),
    ("bool birth year", event("profile_update", birth_year=True), "birth_year", "must be an integer"),
    ("bool household", event("profile_update", household=True), "household", "must be an integer"),
    ("bool duration", event("app_session", duration_seconds=True), "duration_seconds", "must be an integer"),
    ("string score", event("survey_response", score="9"), "score", "must be an integer"),
    ("int for bool", event("support_contact", resolved=1), "resolved", "must be true or false (got 1)"),
    ("huge points", event("loyalty", points_delta=2**63), "points_delta", "must be <= 1000000000"),
    ("birth year", event("profile_update", birth_year=1899), "birth_year", "must be >= 1900"),
    ("household", event("profile_update", household=21), "household", "must be <= 20"),
    ("empty region", event("profile_update", region=""), "region", "must not be empty"),
    ("gender", event("profile_update", gender="f"), "gender", "must be one of"),
    ("items not a list", event("purchase", items="s-1"), "items", "must be an array"),
    ("item not an object", event("purchase", items=["s-1"]), "items[0]", "must be an object"),
    (
        "too many items",
        event("purchase", items=[{"sku": "s", "quantity": 1}] * 501),
        "items",
        "at most 500 items",
    ),
    ("surrogate", event("email_open", campaign_id="\ud800"), "campaign_id", "must be valid Unicode text"),
    ("nested junk", event("web_visit", page=[[[[["deep"]]]]]), "page", "must be a string (got [[[...]]])"),
]


@pytest.mark.parametrize(
    ("raw", "field", "fragment"), [case[1:] for case in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_events_name_the_field(raw: dict[str, object], field: str, fragment: str) -> None:
    error = rejected(raw)
    assert error.field == field
    assert f": {field}: " in str(error)
    assert fragment in str(error)
    try:
        as_json = as_bytes(raw)
    except (TypeError, ValueError):
        return  # not expressible in JSON (bytes, datetime, Decimal, surrogates, inf)
    assert rejected(as_json).field == field  # same verdict from bytes


def test_message_format_and_error_count() -> None:
    error = rejected(as_bytes(event("purchase", amount="-5")))
    assert str(error) == "invalid purchase event: amount: must be >= 0 (got '-5')"
    error = rejected(event("purchase", amount="-5", currency="eur", channel="fax"))
    assert str(error).startswith("invalid purchase event: amount: must be >= 0 (got '-5') (+2 more errors)")
    assert "(+1 more error)" in str(rejected(event("purchase", amount="-5", currency="eur")))
    assert str(rejected(event("email_open", schema_version=2))) == (
        "invalid email_open event: schema_version: unsupported version 2 (supported: 1)"
    )
    assert str(rejected(event("email_open", type="cart", schema_version=2))) == (
        "invalid event: schema_version: unsupported version 2 (supported: 1) (+1 more error)"
    )


@pytest.mark.parametrize(
    ("literal", "fragment"),
    [
        ("NaN", "amount: must be a finite number"),
        ("Infinity", "amount: must be a finite number"),
        ("-Infinity", "amount: must be a finite number"),
        ("1e400", "amount: must be below 10^15"),
        ("1e-400", "amount: must have at most 4 decimal places"),
        ("1e99999999999999999999", "amount: must be a finite number"),  # beyond Decimal's exponent range
        ("0.12340000000000000001", "amount: must have at most 4 decimal places"),  # as a float: 0.1234
        ("true", "amount: must be a decimal number or a numeric string"),
        ('"1e400"', "amount: must be below 10^15"),
        ('"Infinity"', "amount: must be a decimal number like 12.50"),
        # strings with an exponent past Decimal's range: InvalidOperation escaped parse_event and stopped
        # the partition, every restart (review of 7 December 2026)
        ('"1E+1000000000000000000000"', "amount: must be below 10^15"),
        ('"1e-1000000000000000000000"', "amount: must have at most 4 decimal places"),
        ('"-1e1000000000000000000000"', "amount: must be >= 0"),  # negative first, as "-1e400" (review)
        ('"-1e-1000000000000000000000"', "amount: must be >= 0"),
    ],
)
def test_non_finite_and_inexact_json_amounts_are_rejected_on_the_field(literal: str, fragment: str) -> None:
    error = rejected(with_literal(event("purchase", amount="@"), literal))
    assert str(error).startswith("invalid purchase event: ") and fragment in str(error), str(error)


@pytest.mark.parametrize("text", ["0E+1000000000000000000000", "-0.000e-1000000000000000000000"])
def test_a_zero_past_the_exponent_range_is_zero(text: str) -> None:
    """Zero whatever its exponent, as "0E+400" is: it was refused as "must be below 10^15" (review)."""
    raw = event("purchase", items=[{"sku": "s", "quantity": 1, "unit_price": text}])
    item = purchase(raw).items[0]
    assert item.unit_price == 0 and str(item.unit_price) == "0"
    assert purchase(event("purchase", amount=text)).amount == 0
    assert "amount: must be > 0" in str(rejected(event("refund", amount=text)))


@pytest.mark.parametrize(
    ("literal", "fragment"),
    [("NaN", "must be a finite"), ("1e-9", "at most 4 decimal"), ('"1e-99999999999999999999"', "at most 4")],
)
def test_non_finite_and_inexact_json_unit_prices_are_rejected(literal: str, fragment: str) -> None:
    raw = event("purchase", items=[{"sku": "s", "quantity": 1, "unit_price": "@"}])
    error = rejected(with_literal(raw, literal))
    assert error.field == "items[0].unit_price" and fragment in str(error)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"not json", "not valid JSON"),
        ('{"a": 1} trailing', "not valid JSON"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),  # no BOM
        (b"[1, 2]", "expected a JSON object (got list)"),
        (b'"purchase"', "expected a JSON object (got str)"),
        (b"42", "expected a JSON object (got int)"),
        (b"null", "expected a JSON object (got NoneType)"),
        (b'{"type": "purchase", "event_id": "\xff"}', "not valid UTF-8 (invalid start byte at byte 34)"),
        (b"\xed\xa0\x80", "not valid UTF-8"),  # an encoded surrogate
        (b"[" * 60_000, "not valid JSON"),  # too deep for both parsers, within the size limit
        (b'{"n": 1' + b"0" * 5000 + b"}", "not valid JSON"),  # int beyond Python's digit limit
        (b" " * (MAX_EVENT_BYTES - 1) + b"{", "not valid JSON"),  # exactly the limit is still read
        (b" " * (MAX_EVENT_BYTES + 1) + b"{}", f"input larger than {MAX_EVENT_BYTES} bytes"),
        (" " * (MAX_EVENT_BYTES + 1) + "{}", f"input larger than {MAX_EVENT_BYTES} bytes"),
        ("\u00e9" * (MAX_EVENT_BYTES // 2 + 1), f"input larger than {MAX_EVENT_BYTES} bytes"),  # 2 bytes each
        (bytearray(b"[]"), "expected a JSON object (got list)"),
        (memoryview(b"7"), "expected a JSON object (got int)"),
        (42, "expected bytes, str or a mapping (got int)"),
        (None, "expected bytes, str or a mapping (got NoneType)"),
    ],
)
def test_unreadable_input_is_an_invalid_event(raw: Any, fragment: str) -> None:
    error = rejected(raw)
    assert str(error).startswith("invalid event: ")
    assert fragment in str(error), str(error)
    assert (error.field, error.event_id, error.customer_id) == (None, None, None)


def test_str_input_counts_utf8_bytes_not_characters() -> None:
    raw = json.dumps(event("web_visit", page="\u00e9" * 2000), ensure_ascii=False)
    padded = raw + " " * (MAX_EVENT_BYTES // 4 + 1 - len(raw))  # long enough to be measured
    assert len(padded.encode()) < MAX_EVENT_BYTES
    assert parse_event(padded).type == "web_visit"
    assert "must be valid Unicode" in str(
        rejected(json.dumps(event("web_visit", page="\ud800"), ensure_ascii=False))
    )


INT_KEY: dict[Any, object] = event("email_open")
INT_KEY[7] = 1


@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [
        (event("survey_response", score=10**5000), "score", "must be <= 10 (got <int too large to show>)"),
        (event("purchase", amount=10**5000), "amount", "must be below 10^15"),
        (
            event("email_open", schema_version=10**5000),
            "schema_version",
            "unsupported version <int too large",
        ),
        (event("email_open", type=10**5000), "type", "unknown event type <int too large to show>"),
        (INT_KEY, "[7]", "field names must be strings (got 7)"),
    ],
)
def test_python_only_oddities_from_mappings(raw: dict[Any, object], field: str, fragment: str) -> None:
    error = rejected(raw)
    assert error.field == field and fragment in str(error), str(error)


def test_dead_letter_ids_are_taken_best_effort() -> None:
    error = rejected(as_bytes(event("purchase", amount="-1", event_id="e-9", customer_id="c-9")))
    assert (error.event_id, error.customer_id) == ("e-9", "c-9")
    error = rejected(event("purchase", event_id=7, customer_id="c" * 300))
    assert error.event_id is None and error.customer_id == "c" * 128
    assert rejected(event("email_open", customer_id="\ud800", schema_version=2)).customer_id == "?"


def test_invalid_event_is_a_value_error_with_attributes() -> None:
    error = InvalidEvent("invalid event: x: y", field="x", event_id="e", customer_id="c")
    assert isinstance(error, ValueError)
    assert (str(error), error.field, error.event_id, error.customer_id) == (
        "invalid event: x: y",
        "x",
        "e",
        "c",
    )


def test_a_non_dict_mapping_is_accepted() -> None:
    class Frozen(Mapping[str, object]):
        def __init__(self, data: dict[str, object]) -> None:
            self._data = data

        def __getitem__(self, key: str) -> object:
            return self._data[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self._data)

        def __len__(self) -> int:
            return len(self._data)

    assert parse_event(Frozen(event("loyalty"))).type == "loyalty"


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_round_trip_through_the_canonical_dict(kind: str) -> None:
    parsed = parse_event(event(kind))
    canonical = event_to_dict(parsed)
    assert parse_event(canonical) == parsed
    assert parse_event(json.dumps(canonical)) == parsed
    assert json.loads(json.dumps(canonical)) == canonical  # JSON-ready as is
    assert list(canonical)[:5] == ["type", "event_id", "customer_id", "occurred_at", "schema_version"]
    assert set(canonical) == set(type(parsed).model_fields)


def test_canonical_dict_format() -> None:
    parsed = parse_event(event("purchase", amount="1E+2", occurred_at="2026-11-20T14:03:12.250+01:00"))
    canonical = event_to_dict(parsed)
    assert canonical["amount"] == "100"
    assert canonical["occurred_at"] == "2026-11-20T13:03:12.250000Z"
    assert event_to_dict(parse_event(event("email_open")))["occurred_at"] == "2026-11-20T13:03:12Z"
    assert canonical["items"] == [
        {"sku": "s-1", "quantity": 2, "unit_price": "49.95", "category": None},
        {"sku": "s-2", "quantity": 1, "unit_price": None, "category": None},
    ]


def test_events_are_frozen_and_hashable() -> None:
    parsed = purchase(event("purchase"))
    with pytest.raises(ValueError, match="frozen"):
        parsed.amount = Decimal(0)
    assert hash(parsed) == hash(parse_event(as_bytes(event("purchase"))))


def test_event_types_match_the_union() -> None:
    union = get_args(get_args(Event)[0])
    assert tuple(cls.model_fields["type"].default for cls in union) == EVENT_TYPES


def test_every_decimal_field_is_known_to_the_float_check() -> None:
    """orjson is only trusted when no Decimal field got a float; a new Decimal field must join that check."""

    def mentions_decimal(annotation: object) -> bool:
        return annotation is Decimal or any(mentions_decimal(arg) for arg in get_args(annotation))

    decimal_fields = {
        (cls.__name__, name)
        for cls in (*get_args(get_args(Event)[0]), Item)
        for name, info in cls.model_fields.items()
        if mentions_decimal(info.annotation)
    }
    assert decimal_fields == {("Purchase", "amount"), ("Refund", "amount"), ("Item", "unit_price")}


def test_currency_allow_list() -> None:
    assert len(CURRENCY_EXPONENT) >= 150
    assert {"EUR": 2, "USD": 2, "GBP": 2, "JPY": 0, "CHF": 2, "SEK": 2, "KWD": 3, "CLP": 0}.items() <= set(
        CURRENCY_EXPONENT.items()
    )
    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in CURRENCY_EXPONENT)
    assert set(CURRENCY_EXPONENT.values()) == {0, 2, 3}
    assert not {"XAU", "XTS", "XXX", "XDR", "CHE", "CLF"} & set(CURRENCY_EXPONENT)
    assert list(CURRENCY_EXPONENT) == sorted(CURRENCY_EXPONENT)
    with pytest.raises(TypeError):
        CURRENCY_EXPONENT["XYZ"] = 2  # type: ignore[index]
    assert ev.CURRENCY_EXPONENT is CURRENCY_EXPONENT


SCHEMA_FILE = Path(ev.__file__).with_name("event_schema.json")


def test_shipped_schema_file_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == ev.schema_text(), (
        "regenerate: python -m segmentation.events"
    )


def test_python_m_segmentation_events_regenerates_the_schema_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the README says it does (run in-process so that coverage sees the `__main__` block)."""
    import runpy
    import warnings

    target = tmp_path / "schema.json"
    monkeypatch.setattr(sys, "argv", ["segmentation.events", str(target)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module is already imported
        runpy.run_module("segmentation.events", run_name="__main__")
    assert target.read_text(encoding="utf-8") == SCHEMA_FILE.read_text(encoding="utf-8")
    assert capsys.readouterr().out == f"wrote {target}\n"


def test_schema_describes_the_wire_format() -> None:
    schema = event_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["discriminator"] == {
        "propertyName": "type",
        "mapping": {
            kind: f"#/$defs/{cls.__name__}" for kind, cls in zip(EVENT_TYPES, EVENT_CLASSES, strict=True)
        },
    }
    defs: Any = schema["$defs"]
    for cls in EVENT_CLASSES:
        assert defs[cls.__name__]["required"][:5] == [
            "type",
            "event_id",
            "customer_id",
            "occurred_at",
            "schema_version",
        ]
        assert defs[cls.__name__]["additionalProperties"] is False
    amount = defs["Purchase"]["properties"]["amount"]
    assert amount["anyOf"][0] == {"type": "number", "minimum": 0}
    assert defs["Refund"]["properties"]["amount"]["anyOf"][0] == {"type": "number", "exclusiveMinimum": 0}
    assert defs["Purchase"]["properties"]["currency"]["enum"] == list(CURRENCY_EXPONENT)
    assert defs["Purchase"]["properties"]["schema_version"]["const"] == 1


def test_running_the_module_regenerates_the_schema_file(tmp_path: Path) -> None:
    """`python -m segmentation.events` writes the file (as the README says); a PATH argument writes there."""
    target = tmp_path / "schema.json"
    result = subprocess.run(
        [sys.executable, "-m", "segmentation.events", str(target)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(ev.__file__).parents[1],
    )
    assert result.returncode == 0 and result.stdout == f"wrote {target}\n", result.stderr
    assert target.read_text(encoding="utf-8") == SCHEMA_FILE.read_text(encoding="utf-8")


# --- property tests: nothing but InvalidEvent ever escapes ---

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.decimals(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = st.sampled_from(
    sorted({name for fields in EXTRA.values() for name in fields} | set(COMMON) | {"type"})
)


def parse_or_invalid(raw: Any) -> Event | None:
    try:
        return parse_event(raw)
    except InvalidEvent:
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_arbitrary_bytes_and_text_only_raise_invalid_event(raw: bytes | str) -> None:
    parse_or_invalid(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=12) | FIELD_NAMES, JSON_VALUES, max_size=8))
def test_arbitrary_dicts_only_raise_invalid_event(raw: dict[str, object]) -> None:
    parse_or_invalid(raw)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EVENT_TYPES), st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=3), st.booleans())
def test_mutated_events_only_raise_invalid_event(kind: str, changes: dict[str, object], wire: bool) -> None:
    raw = event(kind, **changes)
    if wire:
        try:
            raw_bytes = json.dumps(raw, default=str).encode("utf-8", "surrogatepass")
        except ValueError:  # NaN keys and similar: still a legal input as a dict
            raw_bytes = b"{}"
        parsed = parse_or_invalid(raw_bytes)
    else:
        parsed = parse_or_invalid(raw)
    if parsed is not None:  # whatever was accepted survives the canonical round trip
        assert parse_event(event_to_dict(parsed)) == parsed
