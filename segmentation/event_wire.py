"""The event contract on the hot path: JSON bytes to validated events with msgspec, in one C pass.

msgspec decodes and checks structure, types, lengths, ranges, enums and unknown fields into the Structs
below (mirrors of :mod:`segmentation.event_types`); amounts, timestamps and currencies then go through the
same functions the pydantic models use (:mod:`segmentation.event_values`), and the result is built as the
pydantic model the core consumes, equal to what pydantic validation gives (fields set included).
:func:`decode_event` returns None for anything it does not accept: `events.parse_event` then runs the
pydantic path, which gives the verdict and the one-line reason (a differential test fuzzes that both
accept the same inputs and give equal events).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType
from msgspec.structs import asdict
from pydantic import BaseModel
from pydantic_core import PydanticCustomError

from segmentation import event_types as models
from segmentation.currencies import CURRENCY_EXPONENT
from segmentation.event_values import money, positive_money, timestamp

__all__ = ["decode_event"]

_MAX_INT: Final = 1_000_000_000  # as event_types._MAX_INT
_Id = Annotated[str, Meta(min_length=1, max_length=128)]  # control characters: decode_event
_Ref = Annotated[str, Meta(min_length=1, max_length=128)]
_Label = Annotated[str, Meta(min_length=1, max_length=64)]
_Page = Annotated[str, Meta(min_length=1, max_length=2048)]


class _Base(Struct, tag_field="type", forbid_unknown_fields=True):
    # amounts are Any: strings, ints, and floats as exact Decimals (float_hook) go to event_values.money;
    # occurred_at is a string for event_values.timestamp (msgspec's own datetime reads other shapes)
    event_id: _Id
    customer_id: _Id
    occurred_at: str
    schema_version: Literal[1]


class _Item(Struct, forbid_unknown_fields=True):
    sku: _Ref
    quantity: Annotated[int, Meta(ge=1, le=_MAX_INT)]
    unit_price: Any = UNSET  # UNSET: left out (not in the model's fields set), None: null
    category: _Label | UnsetType | None = UNSET


class _Purchase(_Base, tag="purchase"):
    order_id: _Ref
    amount: Any
    currency: str
    channel: Literal["web", "store", "app", "phone"]
    items: Annotated[tuple[_Item, ...], Meta(max_length=500)] | UnsetType = UNSET
    coupon_used: bool | UnsetType = UNSET


class _Refund(_Base, tag="refund"):
    order_id: _Ref
    amount: Any
    currency: str


class _EmailSent(_Base, tag="email_sent"):
    campaign_id: _Ref | UnsetType | None = UNSET


class _EmailOpen(_Base, tag="email_open"):
    campaign_id: _Ref | UnsetType | None = UNSET


class _EmailClick(_Base, tag="email_click"):
    campaign_id: _Ref | UnsetType | None = UNSET


class _EmailUnsubscribe(_Base, tag="email_unsubscribe"):
    campaign_id: _Ref | UnsetType | None = UNSET


class _WebVisit(_Base, tag="web_visit"):
    page: _Page | UnsetType | None = UNSET


class _AppSession(_Base, tag="app_session"):
    duration_seconds: Annotated[int, Meta(ge=0, le=_MAX_INT)] | UnsetType | None = UNSET


class _Loyalty(_Base, tag="loyalty"):
    points_delta: Annotated[int, Meta(ge=-_MAX_INT, le=_MAX_INT)]
    tier: _Label | UnsetType | None = UNSET


class _SupportContact(_Base, tag="support_contact"):
    channel: Literal["email", "phone", "chat", "store"]
    resolved: bool


class _SurveyResponse(_Base, tag="survey_response"):
    score: Annotated[int, Meta(ge=0, le=10)]
    interests: Annotated[tuple[_Label, ...], Meta(max_length=50)] | UnsetType = UNSET


class _ProfileUpdate(_Base, tag="profile_update"):
    birth_year: Annotated[int, Meta(ge=1900, le=2100)] | UnsetType | None = UNSET
    gender: Literal["female", "male", "other", "undisclosed"] | UnsetType | None = UNSET
    region: _Label | UnsetType | None = UNSET
    household: Annotated[int, Meta(ge=1, le=20)] | UnsetType | None = UNSET


class _CustomerErased(_Base, tag="customer_erased"):
    pass


_Wire = (
    _Purchase | _Refund | _EmailSent | _EmailOpen | _EmailClick | _EmailUnsubscribe | _WebVisit | _AppSession
    | _Loyalty | _SupportContact | _SurveyResponse | _ProfileUpdate | _CustomerErased
)  # fmt: skip


def _exact(text: str) -> Decimal:
    """JSON number with a fraction or exponent -> exact Decimal (as events._decimal: out of range, NaN)."""
    try:
        return Decimal(text)
    except ArithmeticError:
        return Decimal("NaN")


_DECODER: Final = msgspec.json.Decoder(_Wire, float_hook=_exact)
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")  # as event_types._Id's pattern
_new: Final[Callable[[type], Any]] = object.__new__
_SLOT: Final = (
    BaseModel.__dict__
)  # the slots pydantic's own model_construct fills (KeyError: pydantic changed)
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


def _items(lines: tuple[_Item, ...]) -> tuple[models.Item, ...]:
    out: list[models.Item] = []
    for line in lines:
        price, category = line.unit_price, line.category
        given = set(_ITEM_FIELDS)
        if price is UNSET:
            price = None
            given.discard("unit_price")
        elif price is not None:
            price = money(price)
        if category is UNSET:
            category = None
            given.discard("category")
        values = {"sku": line.sku, "quantity": line.quantity, "unit_price": price, "category": category}
        out.append(_model(models.Item, values, given))
    return tuple(out)


_SPECIAL: Final[dict[str, Callable[[Any], Any]]] = {"currency": _currency, "items": _items}


def _plan(kind: type[Struct], model: type[BaseModel]) -> _Plan:
    """How a Struct becomes its model: (model, tag, converters, defaults of optional fields, all fields)."""
    fields = kind.__struct_fields__
    assert set(fields) | {"type"} == set(model.model_fields), kind  # mirrors: same fields, same names
    special = {**_SPECIAL, "amount": positive_money if kind is _Refund else money}
    converters = tuple((name, special[name]) for name in fields if name in special)
    optional = fields[len(fields) - len(kind.__struct_defaults__) :]
    defaults = tuple((name, model.model_fields[name].default) for name in optional)
    return model, str(kind.__struct_config__.tag), converters, defaults, frozenset(model.model_fields)


_Plan = tuple[
    type[BaseModel], str, tuple[tuple[str, Callable[[Any], Any]], ...], tuple[tuple[str, object], ...],
    frozenset[str],
]  # fmt: skip
_PLANS: Final[dict[type[Struct], _Plan]] = {
    kind: _plan(kind, model) for kind, model in zip(_Wire.__args__, models.EVENT_CLASSES, strict=True)
}


def decode_event(raw: bytes | str) -> models.Event | None:
    """The validated event in `raw` (JSON of at most events.MAX_EVENT_BYTES), or None when it is not
    acceptable as it stands: the caller's pydantic path then says why (or, never seen, accepts it)."""
    try:
        wire = _DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeEncodeError, RecursionError):
        return None  # ValidationError is a DecodeError; UnicodeEncodeError: a str with lone surrogates
    model, tag, converters, defaults, names = _PLANS[type(wire)]
    values: dict[str, Any] = {"type": tag, **asdict(wire)}
    ids = values["event_id"] + values["customer_id"]
    if not (ids.isascii() and ids.isprintable()) and _CONTROL.search(ids):  # isprintable: ASCII fast path
        return None
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
