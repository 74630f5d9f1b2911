"""msgspec (`event_wire.decode_event`) and pydantic (`events.validate_event`) accept the same JSON events and
give equal ones: generated valid events, and mutated ones (wrong types, boundaries, missing and extra
fields, odd unicode, huge numbers, NaN/Infinity, duplicate keys, non-UTC times, float or string amounts)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from segmentation.currencies import CURRENCY_EXPONENT
from segmentation.event_types import EVENT_CLASSES
from segmentation.event_wire import decode_event
from segmentation.events import EVENT_TYPES, MAX_EVENT_BYTES, InvalidEvent, parse_event, validate_event
from tests.unit.test_events import event


@dataclass(frozen=True)
class Token:
    """A raw JSON token written as is: numbers in any spelling, NaN, Infinity, broken text."""

    text: str


Pairs = list[tuple[str, Any]]  # an object as key/value pairs: keys may repeat


def dumps(value: Any, ascii_only: bool) -> str:
    if isinstance(value, Token):
        return value.text
    if isinstance(value, list) and value and all(isinstance(p, tuple) for p in value):
        inner = (f"{dumps(k, ascii_only)}:{dumps(v, ascii_only)}" for k, v in value)
        return "{" + ",".join(inner) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v, ascii_only) for v in value) + "]"
    if isinstance(value, dict):
        return dumps(list(value.items()), ascii_only) if value else "{}"
    return json.dumps(value, ensure_ascii=ascii_only)


def verdict(parse: Any, raw: bytes | str) -> tuple[object, ...]:
    """What a path made of `raw`: the event in every detail that can differ, or that it was rejected."""
    try:
        parsed = parse(raw)
    except InvalidEvent:
        parsed = None
    if parsed is None:
        return ("rejected",)
    fields = {name: getattr(parsed, name) for name in type(parsed).model_fields}
    shapes = {name: (type(v), repr(v)) for name, v in fields.items()}  # Decimal('1.0') != Decimal('1')
    items = [(type(i), i.model_fields_set, repr(i)) for i in getattr(parsed, "items", ())]
    dumped = json.dumps(parsed.model_dump(mode="json"))  # key order included
    return (type(parsed), parsed, repr(parsed), parsed.model_fields_set, shapes, items, dumped)


def repeats_a_key(raw: bytes | str) -> bool:
    """Does an object in `raw` repeat a key? msgspec checks every occurrence, pydantic only the last."""
    repeated: list[bool] = []

    def check(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        repeated.append(len({k for k, _ in pairs}) < len(pairs))
        return dict(pairs)

    json.loads(raw, object_pairs_hook=check, parse_constant=str)
    return any(repeated)


def same(raw: bytes | str) -> tuple[object, ...]:
    """Assert both paths agree on `raw`, and parse_event with them; returns the verdict."""
    reference = verdict(validate_event, raw)
    size = len(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass"))
    mine = verdict(decode_event, raw) if size <= MAX_EVENT_BYTES else ("rejected",)  # parse_event's check
    if mine == ("rejected",) and reference != ("rejected",):  # the one known difference, see event_wire
        assert repeats_a_key(raw), raw
    else:
        assert mine == reference
    assert verdict(parse_event, raw) == reference
    if reference == ("rejected",):  # parse_event's reason is pydantic's, word for word
        with pytest.raises(InvalidEvent) as ours:
            parse_event(raw)
        with pytest.raises(InvalidEvent) as theirs:
            validate_event(raw)
        assert str(ours.value) == str(theirs.value)
    return reference


_odd_text = st.text(
    st.characters(codec="utf-8") | st.sampled_from('\x00\x1f\x7f\x80\x9f\u2028\ufeff\U0001f600 \n\t\\"'),
    max_size=12,
)
_numbers = st.sampled_from(
    [
        "0", "-0", "1", "-1", "0.0", "-0.0", "1.5", "1e2", "1E-2", "1.0e+2", "12.3456", "12.34567", "0.00001",
        "999999999999999.9999", "1000000000000000", "1e15", "9.99e14", "1e400", "-1e400", "1e-400",
        "123456789012345678901234567890", "NaN", "Infinity", "-Infinity", "1000000000", "1000000001",
        "-1000000000", "-1000000001", "10", "11", "1900", "2100", "2101", "20", "21", "500", "1.0", "01",
        "1.", ".5", "+1", "0x10", "1e999999999999", "true", "false", "null",
    ]
).map(Token)  # fmt: skip
_odd = st.one_of(
    _numbers,
    _odd_text,
    st.integers(min_value=-(10**20), max_value=10**20),
    st.booleans(),
    st.none(),
    st.just([]),
    st.just({}),
    st.lists(st.integers(0, 3), max_size=3),
    st.just({"sku": "s"}),
    st.sampled_from(["", "x" * 64, "x" * 65, "x" * 128, "x" * 129, "y" * 2048, "y" * 2049]),
)
_valid_text = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
_stamp = st.builds(
    lambda when, offset, sep: when.isoformat(sep=sep) + offset,
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    st.sampled_from(["Z", "+00:00", "-05:30", "+14:00", "+0100"]),
    st.sampled_from(["T", " "]),
)
_odd_stamp = st.builds(
    lambda when, offset, sep: when.isoformat(sep=sep) + offset,
    st.datetimes(),
    st.sampled_from(["Z", "+00:00", "+0100", "", "z", "+24:00", "-00:00", "+01", "+01:00:30"]),
    st.sampled_from(["T", " ", "t", "_"]),
) | st.sampled_from(
    [
        "2026-11-20T14:03Z", "2026-11-20", "2026-02-30T00:00:00Z", "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00", "2026-11-20T14:03:12.123456789Z", "2026-11-20T14:03:12.1234567891Z",
        "2026-11-20T24:00:00Z", "2026-11-20T23:59:60Z", "20261120T140312Z", "2026-11-20T14:03:12,5Z",
        "\uff12\uff10\uff12\uff16-11-20T14:03:12Z", "2026-11-20T14:03:12Z ", "2026-W47-5T14:03:12Z",
    ]
)  # fmt: skip
_amount = st.one_of(
    st.decimals(min_value=0, max_value=10**15 - 1, places=4, allow_nan=False).map(str),
    st.decimals(min_value=0, max_value=10**15 - 1, places=4, allow_nan=False).map(lambda d: Token(str(d))),
    st.integers(0, 10**15 - 1),
    st.sampled_from(["12.50", "0.0001", "1e2", "-0", "1E+2", "1.000000"]),
    st.sampled_from(["12.50", "0.0001", "1e2", "-0", "1E+2", "1.000000", "1e-2"]).map(Token),
)
_odd_amount = (
    st.sampled_from(["0", "0.00001", "NaN", " 5", "1_000", "-1", "1e15", "-0.0001", "Infinity", "١٢"])
    | _numbers
)
_label = st.text(_valid_text, min_size=1, max_size=64)
_id = st.text(_valid_text, min_size=1, max_size=128)
_item = st.fixed_dictionaries(
    {"sku": _id, "quantity": st.integers(1, 10**9)},
    optional={"unit_price": _amount | st.none(), "category": _label | st.none()},
)
_odd_item = st.fixed_dictionaries(
    {"sku": st.text(max_size=3) | st.just("s-1"), "quantity": st.integers(-1, 3) | _numbers},
    optional={"unit_price": _odd_amount | st.none(), "category": _odd_text | st.none(), "size": st.just(1)},
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {  # valid values of each field
    "event_id": _id,
    "customer_id": _id,
    "occurred_at": _stamp,
    "schema_version": st.just(1),
    "order_id": st.text(min_size=1, max_size=128),
    "amount": _amount,
    "currency": st.sampled_from([*CURRENCY_EXPONENT]),
    "channel": st.sampled_from(["web", "store", "app", "phone"]),
    "items": st.lists(_item, max_size=3),
    "coupon_used": st.booleans(),
    "campaign_id": st.none() | st.text(min_size=1, max_size=128),
    "page": st.none() | st.text(min_size=1, max_size=2048),
    "duration_seconds": st.none() | st.integers(0, 10**9),
    "points_delta": st.integers(-(10**9), 10**9),
    "tier": st.none() | _label,
    "resolved": st.booleans(),
    "score": st.integers(0, 10),
    "interests": st.lists(_label, max_size=50),
    "birth_year": st.none() | st.integers(1900, 2100),
    "gender": st.none() | st.sampled_from(["female", "male", "other", "undisclosed"]),
    "region": st.none() | _label,
    "household": st.none() | st.integers(1, 20),
}
BORDER: dict[str, st.SearchStrategy[Any]] = {  # values of each field just outside (or at) the contract
    "event_id": _odd_text | st.sampled_from(["", "x" * 129, "e\x85", "e\n", "\u2028"]),
    "customer_id": _odd_text | st.sampled_from(["", "x" * 129, "c\x7f"]),
    "occurred_at": _odd_stamp,
    "schema_version": st.sampled_from([2, 0, Token("1.0"), True, "1", Token("1e0")]),
    "order_id": st.sampled_from(["", "x" * 129, "\x00"]),
    "amount": _odd_amount,
    "currency": st.sampled_from(["eur", "XAU", "", "EURO", "Eur"]),
    "channel": st.sampled_from(["email", "chat", "Web", ""]),
    "items": st.lists(_odd_item, min_size=1, max_size=3)
    | st.just([{"sku": "s", "quantity": 1}] * 501)
    | st.just([{"sku": "s", "quantity": 1}] * 500),
    "coupon_used": st.sampled_from([0, 1, "true"]),
    "campaign_id": st.sampled_from(["", "x" * 129]),
    "page": st.sampled_from(["", "p" * 2049]),
    "duration_seconds": st.sampled_from([-1, 10**9 + 1, Token("1.0")]),
    "points_delta": st.sampled_from([-(10**9) - 1, 10**9 + 1, 2**63, -(2**63) - 1, 2**64]),
    "tier": st.sampled_from(["", "x" * 65]),
    "resolved": st.sampled_from([0, "false"]),
    "score": st.sampled_from([-1, 11]),
    "interests": st.just(["a"] * 51) | st.lists(_odd_text, min_size=1, max_size=2),
    "birth_year": st.sampled_from([1899, 2101]),
    "gender": st.sampled_from(["f", "Female", ""]),
    "region": st.sampled_from(["", "x" * 65]),
    "household": st.sampled_from([0, 21]),
}
NAMES = {
    cls.model_fields["type"].default: [n for n in cls.model_fields if n != "type"] for cls in EVENT_CLASSES
}


@st.composite
def events(draw: st.DrawFn, mutate: bool) -> Pairs:
    """One event as key/value pairs: every field plausible, or (mutate) some fields odd, missing or extra."""
    kind = draw(st.sampled_from(EVENT_TYPES))
    pairs: Pairs = [("type", kind)]
    for name in NAMES[kind]:
        if mutate and draw(st.integers(0, 9)) == 0:
            continue  # missing (optional fields too: then the default applies)
        roll = draw(st.integers(0, 19)) if mutate else 19
        pairs.append((name, draw(_odd if roll < 2 else BORDER[name] if roll < 5 else FIELDS[name])))
    if mutate:
        if draw(st.integers(0, 9)) == 0:
            pairs.append((draw(st.sampled_from([*FIELDS, "extra", "Type", ""])), draw(FIELDS["order_id"])))
        if draw(st.integers(0, 9)) == 0:  # a duplicate key, with another value or the same
            key, value = draw(st.sampled_from(pairs))
            pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(st.just(value) | _odd)))
        if draw(st.integers(0, 19)) == 0:
            pairs[0] = ("type", draw(st.sampled_from([*EVENT_TYPES, "Purchase", "", 1])))
    return draw(st.permutations(pairs)) if draw(st.booleans()) else pairs


def encoded(pairs: Pairs, ascii_only: bool, as_str: bool) -> bytes | str:
    text = dumps(pairs, ascii_only)
    return text if as_str else text.encode("utf-8", "surrogatepass")


_PROFILE = settings(max_examples=2000, deadline=None, suppress_health_check=[*HealthCheck])


@_PROFILE
@given(events(mutate=False), st.booleans(), st.booleans())
def test_both_paths_agree_on_generated_events(pairs: Pairs, ascii_only: bool, as_str: bool) -> None:
    same(encoded(pairs, ascii_only, as_str))


@_PROFILE
@given(events(mutate=True), st.booleans(), st.booleans())
@example([("type", "email_open"), *event("email_open", campaign_id=...).items()][1:], False, False)
def test_both_paths_agree_on_mutated_events(pairs: Pairs, ascii_only: bool, as_str: bool) -> None:
    same(encoded(pairs, ascii_only, as_str))


def test_the_valid_generator_makes_mostly_valid_events() -> None:
    """A differential test over rejections only would prove little: most generated events must pass."""
    accepted = 0

    @settings(max_examples=400, deadline=None, database=None, suppress_health_check=[*HealthCheck])
    @given(events(mutate=False))
    def count(pairs: Pairs) -> None:
        nonlocal accepted
        accepted += same(encoded(pairs, True, False)) != ("rejected",)

    count()
    assert accepted > 100


def line(kind: str, token: str = "", **changes: object) -> str:
    """JSON of a valid event of `kind` with `changes`; the string "@" in it becomes the raw JSON `token`."""
    return json.dumps(event(kind, **changes)).replace('"@"', token)


ESCAPED_TAG = '"\\u0074ype": "web\\u005fvisit"'  # "type": "web_visit" with JSON escapes
SAMPLES: list[tuple[str, bytes | str]] = [
    ("valid purchase", json.dumps(event("purchase"))),
    ("no items", json.dumps(event("purchase", items=...))),
    ("item price null", line("purchase", items=[{"sku": "s", "quantity": 1, "unit_price": None}])),
    ("item category", line("purchase", items=[{"sku": "s", "quantity": 1, "category": "shoe"}])),
    ("float amount", json.dumps(event("purchase", amount="@")).replace('"@"', "12.50")),
    ("float price", line("purchase", items=[{"sku": "s", "quantity": 1, "unit_price": "@"}], token="1.25")),
    ("float amount, 5 places", json.dumps(event("purchase", amount="@")).replace('"@"', "1.00001")),
    ("unknown currency", json.dumps(event("refund", currency="XAU"))),
    ("lower-case currency", json.dumps(event("refund", currency="eur"))),
    ("refund of 0", json.dumps(event("refund", amount="0"))),
    ("non-ASCII ids", json.dumps(event("email_open", event_id="é-1", customer_id="ü"))),
    ("C1 control in an id", json.dumps(event("email_open", customer_id="c\x85"))),
    ("C0 control in an id", json.dumps(event("email_open", event_id="e\n"))),
    ("naive time", json.dumps(event("email_open", occurred_at="2026-11-20T14:03:12"))),
    ("duplicate type", '{"type":"email_open",' + json.dumps(event("email_sent"))[1:]),
    ("not an object", "[1]"),
    ("lone surrogate in a str", json.dumps(event("web_visit", page="\ud800"), ensure_ascii=False)),
    ("lone surrogate escaped", json.dumps(event("web_visit", page="\ud800"))),
    ("invalid UTF-8", json.dumps(event("web_visit", page="\xff")).encode("latin-1")),
    ("NaN amount", json.dumps(event("purchase", amount="@")).replace('"@"', "NaN")),
    ("huge exponent", json.dumps(event("purchase", amount="@")).replace('"@"', "1e999999999999")),
    ("huge integer", json.dumps(event("loyalty", points_delta="@")).replace('"@"', "9" * 5000)),
    ("amount nested deep", line("purchase", amount="@", token="[" * 20_000 + "]" * 20_000)),
    ("amount of 5000 digits", line("purchase", amount="@", token="9" * 5000)),
    ("raw newline in a string", line("web_visit", page="@", token='"a\nb"')),
    ("raw DEL in a string", line("web_visit", page="@", token='"a\x7fb"')),
    ("escaped key and tag", line("web_visit").replace('"type": "web_visit"', ESCAPED_TAG)),
    ("items null", line("purchase", items=None)),
    ("at the size limit", json.dumps(event("web_visit", page="p" * 2000)).ljust(MAX_EVENT_BYTES)),
    ("over the size limit", json.dumps(event("web_visit")).ljust(MAX_EVENT_BYTES + 1).encode()),
    ("str over a quarter of the limit", json.dumps(event("web_visit")).ljust(MAX_EVENT_BYTES // 4 + 1)),
]  # fmt: skip


@pytest.mark.parametrize(("label", "raw"), SAMPLES, ids=[label for label, _ in SAMPLES])
def test_both_paths_agree_on_edge_cases(label: str, raw: bytes | str) -> None:
    reference = same(raw)
    if label == "duplicate type":  # the one known difference: msgspec refuses, parse_event asks pydantic
        assert verdict(decode_event, raw) == ("rejected",) and reference != ("rejected",)
