"""The event contract's way in: raw input to a validated event (types in :mod:`segmentation.event_types`).

Everything entering the stream goes through :func:`parse_event`, which returns a validated event or raises
:class:`InvalidEvent` (never anything else), so the worker can dead-letter bad input and go on.
Amounts are exact :class:`~decimal.Decimal` values (JSON numbers never pass through binary float);
timestamps must carry a UTC offset and are normalised to UTC. JSON is decoded and validated by msgspec
(:mod:`segmentation.event_wire`, the hot path); mappings and whatever msgspec refuses by pydantic (orjson,
then the json module where an amount needs exact digits), which words every rejection.
"""

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Final

import orjson
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from segmentation.currencies import CURRENCY_EXPONENT
from segmentation.event_types import (
    EVENT_CLASSES,
    EVENT_TYPES,
    AppSession,
    CustomerErased,
    EmailClick,
    EmailOpen,
    EmailSent,
    EmailUnsubscribe,
    Event,
    EventBase,
    Item,
    Loyalty,
    ProfileUpdate,
    Purchase,
    Refund,
    SupportContact,
    SurveyResponse,
    WebVisit,
)
from segmentation.event_values import SCHEMA_VERSION, show
from segmentation.event_wire import decode_event

__all__ = [
    "CURRENCY_EXPONENT", "EVENT_TYPES", "MAX_EVENT_BYTES", "SCHEMA_VERSION", "AppSession", "CustomerErased",
    "EmailClick", "EmailOpen", "EmailSent", "EmailUnsubscribe", "Event", "EventBase", "InvalidEvent", "Item",
    "Loyalty", "ProfileUpdate", "Purchase", "Refund", "SupportContact", "SurveyResponse", "WebVisit",
    "event_json_schema", "event_to_dict", "parse_event",
]  # fmt: skip

MAX_EVENT_BYTES: Final = 64 * 1024


class InvalidEvent(ValueError):
    """An event that cannot be accepted; the message names the field and the reason (for the dead letter)."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        event_id: str | None = None,
        customer_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field  # dotted path of the offending field, e.g. "items[0].quantity"
        self.event_id = event_id  # best effort from the raw input, for dead-letter records
        self.customer_id = customer_id


_TYPES: Final = frozenset(EVENT_TYPES)
_MISSING: Final = object()
_ADAPTER: Final[TypeAdapter[Event]] = TypeAdapter(Event)
_VALIDATORS: Final[dict[str, Callable[[object], Event]]] = {
    cls.model_fields["type"].default: cls.__pydantic_validator__.validate_python for cls in EVENT_CLASSES
}


def _decimal(text: str) -> Decimal:
    """JSON number -> exact Decimal; exponents beyond Decimal's range become NaN, which is then rejected."""
    try:
        return Decimal(text)
    except ArithmeticError:
        return Decimal("NaN")


_EXACT_DECODER: Final = json.JSONDecoder(parse_float=_decimal, parse_constant=_decimal)
_MESSAGES: Final = {  # pydantic error type -> our wording ({...} filled from the error context)
    "missing": "field required",
    "extra_forbidden": "unexpected field",
    "invalid_key": "field names must be strings",
    "greater_than_equal": "must be >= {ge}",
    "less_than_equal": "must be <= {le}",
    "string_too_short": "must not be empty",
    "string_too_long": "must have at most {max_length} characters",
    "too_long": "must have at most {max_length} items",
    "string_type": "must be a string",
    "string_unicode": "must be valid Unicode text",
    "string_pattern_mismatch": "must not contain control characters",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "literal_error": "must be one of {expected}",
    "model_type": "must be an object",
    "tuple_type": "must be an array",
}


def _clip(value: object) -> str | None:
    return value[:128].encode("utf-8", "replace").decode("utf-8") if isinstance(value, str) else None


def _problem(error: ErrorDetails) -> tuple[str | None, str, str]:
    """(event type, field path, message) for one pydantic error, in our wording."""
    kind, loc = error["type"], error["loc"]
    template = _MESSAGES.get(kind)
    message = template.format_map(error.get("ctx", {})) if template else error["msg"]
    if kind not in ("missing", "extra_forbidden", "schema_version"):  # these show no value, or already did
        message += f" (got {show(error['input'])})"
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])
    return str(loc[0]), path.lstrip("."), message


def _invalid(problems: list[tuple[str | None, str, str]], data: Mapping[object, object]) -> InvalidEvent:
    """One readable InvalidEvent naming the first problem; a bad schema version always comes first."""
    version = data.get("schema_version", _MISSING)
    if not (type(version) is int and version == SCHEMA_VERSION) and all(
        p[1] != "schema_version" for p in problems
    ):
        reason = (
            "field required" if version is _MISSING else f"unsupported version {show(version)} (supported: 1)"
        )
        problems.append((None, "schema_version", reason))  # the type was unknown, so pydantic never got there
    problems.sort(key=lambda problem: problem[1] != "schema_version")
    event_type, field, message = problems[0]
    text = f"invalid {event_type + ' ' if event_type else ''}event: {field}: {message}"
    if len(problems) > 1:
        text += f" (+{len(problems) - 1} more error{'s' if len(problems) > 2 else ''})"
    return InvalidEvent(
        text, field=field, event_id=_clip(data.get("event_id")), customer_id=_clip(data.get("customer_id"))
    )


def _binary_float_amount(data: object) -> bool:
    """Did orjson make an amount a binary float? Then re-parse exactly (keep in step with Decimal fields)."""
    if type(data) is not dict:
        return False
    if type(data.get("amount")) is float:
        return True
    items = data.get("items")
    return type(items) is list and any(
        type(it) is dict and type(it.get("unit_price")) is float for it in items
    )


def _decode(raw: object) -> object:
    """JSON text -> Python values with exact Decimals: orjson when that is exact, else the json module."""
    if type(raw) is bytes:
        size = len(raw)
    elif isinstance(raw, str):
        size = len(raw) if len(raw) <= MAX_EVENT_BYTES // 4 else len(raw.encode("utf-8", "surrogatepass"))
    elif isinstance(raw, bytes | bytearray | memoryview):
        raw = bytes(raw)
        size = len(raw)
    else:
        raise InvalidEvent(f"invalid event: expected bytes, str or a mapping (got {type(raw).__name__})")
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent(f"invalid event: input larger than {MAX_EVENT_BYTES} bytes")
    try:
        data = orjson.loads(raw)
        if type(data) is dict and "amount" not in data and "items" not in data:  # no Decimal field here
            return data
        if not _binary_float_amount(data):
            return data
    except orjson.JSONDecodeError:
        pass  # the exact decoder below gives the verdict and the message
    try:
        return _EXACT_DECODER.decode(raw if isinstance(raw, str) else raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidEvent(
            f"invalid event: input is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidEvent(f"invalid event: not valid JSON: {exc}") from None


def parse_event(raw: bytes | str | Mapping[str, object]) -> Event:
    """Validate one event from JSON bytes/str or a mapping; raises InvalidEvent and nothing else.

    JSON goes through msgspec (`event_wire`) first; what it does not accept, and mappings, through pydantic
    (`validate_event`), which gives the same verdict and the reason (tests/unit/test_events_wire.py)."""
    if (type(raw) is bytes and len(raw) <= MAX_EVENT_BYTES) or (
        type(raw) is str and len(raw) <= MAX_EVENT_BYTES // 4  # at most 4 UTF-8 bytes per character
    ):
        event = decode_event(raw)
        if event is not None:
            return event
    return validate_event(raw)


def validate_event(raw: bytes | str | Mapping[str, object]) -> Event:
    """`parse_event` with pydantic only: the reference the msgspec path is tested against."""
    if type(raw) is dict:  # validation never mutates it: no copy needed (the common case for callers)
        data: object = raw
    else:
        data = _decode(raw) if type(raw) is bytes or not isinstance(raw, Mapping) else dict(raw)
    if not isinstance(data, dict):
        raise InvalidEvent(f"invalid event: expected a JSON object (got {type(data).__name__})")
    kind = data.get("type", _MISSING)
    if type(kind) is not str or kind not in _TYPES:  # checked here: pydantic chokes on odd tags
        expected = f"(expected one of: {', '.join(EVENT_TYPES)})"
        reason = (
            f"field required {expected}"
            if kind is _MISSING
            else f"unknown event type {show(kind)} {expected}"
        )
        raise _invalid([(None, "type", reason)], data)
    try:
        return _VALIDATORS[kind](data)  # the union's member for this tag: same result, no dispatch
    except ValidationError:
        pass
    try:  # the union again, for its error locations (they start with the event type)
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise _invalid([_problem(error) for error in exc.errors(include_url=False)], data) from None


def event_to_dict(event: Event) -> dict[str, object]:
    """Canonical JSON-ready form: all fields (None as null), Decimals as plain strings, UTC time with Z."""
    return event.model_dump(mode="json")


def event_json_schema() -> dict[str, object]:
    """JSON Schema (draft 2020-12) for producers; shipped as segmentation/event_schema.json."""
    schema = _ADAPTER.json_schema()
    for cls in EVENT_CLASSES:  # "type" has a default for Python callers, but on the wire it is required
        schema["$defs"][cls.__name__]["required"].insert(0, "type")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "segstream event", **schema}


def schema_text() -> str:
    """The content of segmentation/event_schema.json (pure: the test compares the shipped file with it)."""
    return json.dumps(event_json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # `python -m segmentation.events [PATH]`: the one file segmentation/ writes
    import sys
    from pathlib import Path

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("event_schema.json")
    target.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {target}")
