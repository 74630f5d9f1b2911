"""The event contract on the hot path: JSON bytes to validated events with msgspec, in one C pass.

msgspec decodes and checks structure, types, lengths, ranges, enums and unknown fields into the Structs
below (mirrors of :mod:`segmentation.event_types`); amounts, timestamps and currencies then go through the
same functions the pydantic models use (:mod:`segmentation.event_values`), and the result is built as the
pydantic model the core consumes, equal to what pydantic validation gives (fields set included).
:func:`decode_event` returns None for anything it does not accept: `events.parse_event` then runs the
pydantic path, which gives the verdict and the one-line reason (tests/unit/test_events_wire.py fuzzes
that both accept the same inputs and give equal events). One known difference, on the safe side: where
an object repeats a key, msgspec checks every occurrence and pydantic (after orjson) only the last, so
msgspec may refuse what pydantic accepts; parse_event then accepts it through pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Final, Literal, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType
from msgspec.structs import asdict
from pydantic import BaseModel
from pydantic_core import PydanticCustomError

from segmentation import event_types as models
from segmentation.currencies import CURRENCY_EXPONENT
from segmentation.event_values import invisible_edge, money, positive_money, timestamp

__all__ = ["decode_event"]

_MAX_INT: Final = 1_000_000_000  # as event_types._MAX_INT
_Id = Annotated[str, Meta(min_length=1, max_length=128)]  # control characters: decode_event
_Ref = Annotated[str, Meta(min_length=1, max_length=128)]
_Label = Annotated[str, Meta(min_length=1, max_length=64)]
_Page = Annotated[str, Meta(min_length=1, max_length=2048)]
_Field = tuple[str, object] | tuple[str, object, object]


def _optional(name: str, kind: object) -> _Field:
    """A field with a default: UNSET when left out (not in the model's fields set), None when null."""
    return name, Union[kind, UnsetType, None], UNSET  # noqa: UP007  (kind is a runtime value)


# Structs are made with defstruct, not class statements: mypyc (which may compile segmentation/) drops the
# class keywords (tag, tag_field) of the classes it leaves to Python, which breaks the tagged union.
# Amounts are Any: strings, ints, and floats as exact Decimals (float_hook) go to event_values.money;
# occurred_at is a string for event_values.timestamp (msgspec's own datetime reads other shapes).
_COMMON: Final[list[_Field]] = [
    ("event_id", _Id), ("customer_id", _Id), ("occurred_at", str), ("schema_version", Literal[1]),
]  # fmt: skip
_ITEM: Final = msgspec.defstruct(
    "_Item",
    [
        ("sku", _Ref),
        ("quantity", Annotated[int, Meta(ge=1, le=_MAX_INT)]),
        ("unit_price", Any, UNSET),
        _optional("category", _Label),
    ],
    forbid_unknown_fields=True,
)
_LINES: Final = tuple.__class_getitem__((_ITEM, ...))  # tuple[_ITEM, ...]: a runtime type, for msgspec
_FIELDS: Final[dict[str, list[_Field]]] = {
    "purchase": [
        ("order_id", _Ref),
        ("amount", Any),
        ("currency", str),
        ("channel", Literal["web", "store", "app", "phone"]),
        ("items", Union[Annotated[_LINES, Meta(max_length=500)], UnsetType], UNSET),  # noqa: UP007
        ("coupon_used", Union[bool, UnsetType], UNSET),  # noqa: UP007
    ],
    "refund": [("order_id", _Ref), ("amount", Any), ("currency", str)],
    "email_sent": [_optional("campaign_id", _Ref)],
    "email_open": [_optional("campaign_id", _Ref)],
    "email_click": [_optional("campaign_id", _Ref)],
    "email_unsubscribe": [_optional("campaign_id", _Ref)],
    "web_visit": [_optional("page", _Page)],
    "app_session": [_optional("duration_seconds", Annotated[int, Meta(ge=0, le=_MAX_INT)])],
    "loyalty": [("points_delta", Annotated[int, Meta(ge=-_MAX_INT, le=_MAX_INT)]), _optional("tier", _Label)],
    "support_contact": [("channel", Literal["email", "phone", "chat", "store"]), ("resolved", bool)],
    "survey_response": [
        ("score", Annotated[int, Meta(ge=0, le=10)]),
        ("interests", Union[Annotated[tuple[_Label, ...], Meta(max_length=50)], UnsetType], UNSET),  # noqa: UP007
    ],
    "profile_update": [
        _optional("birth_year", Annotated[int, Meta(ge=1900, le=2100)]),
        _optional("gender", Literal["female", "male", "other", "undisclosed"]),
        _optional("region", _Label),
        _optional("household", Annotated[int, Meta(ge=1, le=20)]),
    ],
    "customer_erased": [],
}
_STRUCTS: Final[dict[str, type[Struct]]] = {
    tag: msgspec.defstruct(
        f"_{tag}", [*_COMMON, *fields], tag_field="type", tag=tag, forbid_unknown_fields=True
    )
    for tag, fields in _FIELDS.items()
}


def _exact(text: str) -> Decimal:
    """JSON number with a fraction or exponent -> exact Decimal (as events._decimal: out of range, NaN)."""
    try:
        return Decimal(text)
    except ArithmeticError:
        return Decimal("NaN")


_DECODER: Final = msgspec.json.Decoder(Union[tuple(_STRUCTS.values())], float_hook=_exact)  # noqa: UP007
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")  # as event_types._Id's pattern
_new: Final[Callable[[type], Any]] = object.__new__
# the slots pydantic's own model_construct fills (a KeyError here: pydantic changed them)
_SLOT: Final = BaseModel.__dict__
_put_dict: Final = _SLOT["__dict__"].__set__
_put_fields_set: Final = _SLOT["__pydantic_fields_set__"].__set__
_put_extra: Final = _SLOT["__pydantic_extra__"].__set__
_put_private: Final = _SLOT["__pydantic_private__"].__set__


def _model(cls: type[BaseModel], values: dict[str, Any], fields_set: set[str]) -> Any:
    """The instance pydantic validation would build, without validating again: what model_construct
    does, minus its per-field default and alias handling (every field is in `values`), ~10x cheaper."""
    instance = _new(cls)
    _put_dict(instance, values)
    _put_fields_set(instance, fields_set)
    _put_extra(instance, None)
    _put_private(instance, None)
    return instance


def _currency(value: str) -> str:
    if value in CURRENCY_EXPONENT:
        return value
    raise PydanticCustomError("segstream", "unknown currency")  # the pydantic path words it


_ITEM_FIELDS: Final = frozenset(models.Item.model_fields)


def _items(lines: tuple[Struct, ...]) -> tuple[models.Item, ...]:
    out: list[models.Item] = []
    for line in lines:
        values = asdict(line)
        given = set(_ITEM_FIELDS)
        price = values["unit_price"]
        if price is UNSET:
            values["unit_price"] = None
            given.discard("unit_price")
        elif price is not None:
            values["unit_price"] = money(price)
        if values["category"] is UNSET:
            values["category"] = None
            given.discard("category")
        out.append(_model(models.Item, values, given))
    return tuple(out)


_SPECIAL: Final[dict[str, Callable[[Any], Any]]] = {"currency": _currency, "items": _items}


def _plan(tag: str, model: type[BaseModel]) -> _Plan:
    """How a Struct becomes its model: (model, tag, converters, defaults of optional fields, all fields)."""
    kind = _STRUCTS[tag]
    fields = kind.__struct_fields__
    assert ("type", *fields) == tuple(model.model_fields), tag  # mirrors: same fields, same order
    special = {**_SPECIAL, "amount": positive_money if tag == "refund" else money}
    converters = tuple((name, special[name]) for name in fields if name in special)
    optional = fields[len(fields) - len(kind.__struct_defaults__) :]
    defaults = tuple((name, model.model_fields[name].default) for name in optional)
    return model, tag, converters, defaults, frozenset(model.model_fields)


_Plan = tuple[
    type[BaseModel], str, tuple[tuple[str, Callable[[Any], Any]], ...], tuple[tuple[str, object], ...],
    frozenset[str],
]  # fmt: skip
_MODELS: Final = {model.model_fields["type"].default: model for model in models.EVENT_CLASSES}
_PLANS: Final[dict[type[Struct], _Plan]] = {_STRUCTS[tag]: _plan(tag, _MODELS[tag]) for tag in _FIELDS}


def decode_event(raw: bytes | str) -> models.Event | None:
    """The validated event in `raw` (JSON of at most events.MAX_EVENT_BYTES), or None when it is not
    acceptable as it stands: the caller's pydantic path then says why (or, never seen, accepts it)."""
    try:
        wire = _DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeError, RecursionError):
        # ValidationError is a DecodeError; UnicodeEncodeError: a str with lone surrogates; msgspec 0.22
        # raises UnicodeDecodeError (0.23 a DecodeError) for invalid UTF-8 inside a string
        return None
    model, tag, converters, defaults, names = _PLANS[type(wire)]
    values: dict[str, Any] = {"type": tag, **asdict(wire)}
    ids = values["event_id"] + values["customer_id"]
    if not (ids.isascii() and ids.isprintable()) and _CONTROL.search(ids):  # isprintable: ASCII fast path
        return None
    customer = values["customer_id"]
    if (customer[0] <= " " or customer[-1] <= " " or not customer.isascii()) and invisible_edge(customer):
        return None  # the pydantic path names it; a quick test first, as this runs for every event
    try:
        values["occurred_at"] = timestamp(values["occurred_at"])
        for name, convert in converters:
            value = values[name]
            if value is not UNSET:
                values[name] = convert(value)
    except PydanticCustomError:
        return None
    given = set(names)
    for name, default in defaults:
        if values[name] is UNSET:
            values[name] = default
            given.discard(name)
    event: models.Event = _new(model)  # as _model, inlined: this runs for every event
    _put_dict(event, values)
    _put_fields_set(event, given)
    _put_extra(event, None)
    _put_private(event, None)
    return event
