"""Value checks of the event contract's fields: exact amounts, currency codes, schema version, timestamps,
customer ids.

The functions pydantic calls for the fields its own types cannot check as we want (`events` binds them to
the models). Each raises a `PydanticCustomError` whose message the event error names the field with;
amounts and timestamps have a fast path for the common shapes that accepts exactly what the full checks
accept and gives the same values (tested), since they run for every event.
"""

import re
import reprlib
import unicodedata
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Final, cast

from pydantic_core import PydanticCustomError

from segmentation.currencies import CURRENCY_EXPONENT
from segmentation.money import MAX_AMOUNT_DIGITS

__all__ = [
    "JSON_NUMBER", "SCHEMA_VERSION", "checked_timestamp", "currency_code", "customer_ref", "fail",
    "invisible_edge", "money", "positive_money", "show", "supported_version", "timestamp",
]  # fmt: skip

SCHEMA_VERSION: Final = 1
_PLACES: Final = Decimal("0.0001")
_ONE: Final = Decimal(1)
_EXACT: Final = Context(prec=40)  # ample for 19 digits; immune to a caller's decimal.getcontext()


def fail(message: str, **context: object) -> PydanticCustomError:
    """The error pydantic reports for a field; `events` turns it into the field-naming InvalidEvent."""
    return PydanticCustomError("segstream", message, context or None)


JSON_NUMBER: Final = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"
_NUMBER_TEXT: Final = re.compile(JSON_NUMBER)


def invisible_edge(text: str) -> str | None:
    """What makes a customer id look like another one, or None: whitespace at either end (" c1", "c1\u00a0")
    or an invisible format character anywhere (a zero-width space, a byte order mark). Either would make
    one customer two states, as the CSV import strips cells and the other producers may not."""
    if text != text.strip():
        return "leading or trailing whitespace"
    if not text.isascii() and any(unicodedata.category(c) == "Cf" for c in text):
        return "an invisible format character (such as U+200B or U+FEFF)"
    return None


def customer_ref(value: str) -> str:
    """A customer id that is one customer whatever its producer: see `invisible_edge`."""
    problem = invisible_edge(value)
    if problem is not None:
        raise fail("customer ids must not contain {problem}", problem=problem)
    return value


_AMOUNTS: Final[dict[str, Decimal]] = {}  # memo of accepted amount texts: prices recur, parsing is ~0.5 µs
_AMOUNTS_LIMIT: Final = 65_536
_OUT_OF_RANGE: Final = ("must be below 10^15", "must have at most 4 decimal places")  # by the exponent's sign


def _amount(value: object, positive: bool) -> Decimal:
    """Exact amount: finite, >= 0 (or > 0), < 10^15, at most 4 places; no exponent and no -0 kept."""
    if type(value) is str:
        known = _AMOUNTS.get(value)
        if known is not None:  # passed every check below once; only "> 0" depends on `positive`
            if positive and not known:
                raise fail("must be > 0")
            return known
        match = _NUMBER_TEXT.fullmatch(value)
        if match is None:  # Decimal() alone would take "1_000", " 5", "NaN"
            raise fail("must be a decimal number like 12.50")
        try:
            number = Decimal(value)
            plain = match[3] is None and len(match[2] or "") <= 5  # no exponent, at most 4 places: fast path
        except ArithmeticError:  # an exponent past the Decimal context's range: 1e-10^21, 1E+10^21
            number, plain = _out_of_range(value, match[1] + (match[2] or ""), match[3]), True
    elif type(value) is int:
        number, plain = Decimal(value), True
    elif type(value) is Decimal:
        number, plain = value, False
    elif type(value) is float:  # only from caller-built mappings: take the digits its repr shows
        number, plain = Decimal(repr(value)), False
    else:
        raise fail("must be a decimal number or a numeric string")
    if not number.is_finite():
        raise fail("must be a finite number")
    if number < 0 or (positive and not number):
        raise fail("must be > 0" if positive else "must be >= 0")
    if number and number.adjusted() >= MAX_AMOUNT_DIGITS:
        raise fail("must be below 10^15")
    if not plain:
        exponent = cast(int, number.as_tuple().exponent)  # an int: the number is finite
        if exponent < -4 and number.quantize(_PLACES, context=_EXACT) != number:
            raise fail("must have at most 4 decimal places")
        if exponent < -4 or exponent > 0:
            number = number.quantize(_PLACES if exponent < 0 else _ONE, context=_EXACT)
    number = number.copy_abs()  # turns -0 into 0; a no-op for every other accepted amount
    if type(value) is str:
        if len(_AMOUNTS) >= _AMOUNTS_LIMIT:
            _AMOUNTS.clear()
        _AMOUNTS[value] = number
    return number


def _out_of_range(text: str, digits: str, exponent: str) -> Decimal:
    """What a text past Decimal's exponent range stands for, judged as its in-range peers are: zero
    whatever its exponent ("0E+10^21" is 0), negative before too large ("-1e10^21" is "must be >= 0")."""
    if not digits.strip("0."):
        return Decimal(0)
    if text.startswith("-"):
        return Decimal(-1)
    raise fail(_OUT_OF_RANGE[exponent[1:2] == "-"])


def money(value: object) -> Decimal:
    return _amount(value, False)


def positive_money(value: object) -> Decimal:
    return _amount(value, True)


def currency_code(value: object) -> str:
    if type(value) is str and value in CURRENCY_EXPONENT:
        return value
    if type(value) is str and value.upper() in CURRENCY_EXPONENT:
        raise fail("currency codes are upper-case, use '{code}'", code=value.upper())
    raise fail("unknown ISO 4217 currency code")


def supported_version(value: object) -> object:
    """Accept exactly the integer 1: a plain Literal[1] would also take ``true`` and ``1.0``."""
    if type(value) is int and value == SCHEMA_VERSION:
        return value
    raise PydanticCustomError(
        "schema_version", "unsupported version {version} (supported: 1)", {"version": show(value)}
    )


# RFC 3339 allows "t" and "z" for "T" and "Z" (its section 5.6), and a space for "T" (its note there)
_ISO_TIMESTAMP: Final = re.compile(
    r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?([Zz]|[+-]\d\d:?\d\d)?", re.ASCII
)


# `text[4::3]` of the two shapes producers send most (`datetime.isoformat()` without fraction, and the
# same with Z): YYYY-MM-DDTHH:MM:SS+HH:MM (or -HH:MM) and YYYY-MM-DDTHH:MM:SSZ.
_CANONICAL_SEPARATORS: Final = frozenset({"--T::+:", "--T::-:", "--T::Z"})


def timestamp(value: object) -> datetime:
    """RFC 3339 / ISO 8601 date-time with offset, to UTC; never guess a zone, never take epoch numbers."""
    if type(value) is str and len(value) in (20, 25) and value[4::3] in _CANONICAL_SEPARATORS:
        # Fast path for the canonical shapes: with every separator where _ISO_TIMESTAMP wants it,
        # fromisoformat reads the fields between them as ASCII digits only, so whatever it accepts the
        # pattern accepts too (with an offset); what it refuses goes through the full checks below.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            try:
                return parsed.astimezone(UTC)
            except OverflowError:
                raise fail("date-time out of range once converted to UTC") from None
    return checked_timestamp(value)


def checked_timestamp(value: object) -> datetime:
    """`timestamp` with every check: any shape the pattern allows, and the messages for the rest."""
    if isinstance(value, str):
        match = _ISO_TIMESTAMP.fullmatch(value)
        if match is None:
            raise fail("must be an ISO 8601 date-time like 2024-05-01T12:00:00Z")
        if match[3] is None:
            raise fail("timestamp must carry a UTC offset")
        try:  # with the offset the pattern saw, the result is always aware (its only letters: T and Z)
            value = datetime.fromisoformat(value.upper())
        except ValueError as exc:  # e.g. month 13, hour 24
            raise fail("invalid date-time: {reason}", reason=str(exc)) from None
    elif not isinstance(value, datetime):
        raise fail("must be an ISO 8601 date-time string")
    elif value.utcoffset() is None:
        raise fail("timestamp must carry a UTC offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC equivalent
        raise fail("date-time out of range once converted to UTC") from None


_REPR: Final = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 2, 60, 60, 40


def show(value: object) -> str:
    """Short, safe rendering of an offending value (bounded length and depth; Decimals without quotes)."""
    try:
        return str(value)[:60] if isinstance(value, Decimal) else _REPR.repr(value)
    except ValueError:  # an int beyond Python's 4300-digit str() limit
        return f"<{type(value).__name__} too large to show>"
