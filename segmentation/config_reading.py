"""Typed readers for the definitions mapping, so every loading error names the offending key.

Definitions come from YAML written by people; a wrong value must fail at load time with the path of
the key (`lifecycle.lost_after_days: expected an integer, got 'x'`), never later inside `apply`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from segmentation.money import MAX_AMOUNT_DIGITS

_LARGEST = Decimal(10) ** MAX_AMOUNT_DIGITS

__all__ = [
    "MAX_DAYS",
    "DefinitionsError",
    "read_decimal",
    "read_float",
    "read_instant",
    "read_int",
    "read_list",
    "read_section",
    "read_str",
]


MAX_DAYS = 36_500  # a century: the longest threshold in days (lifecycle, RFM recency, as the rules' windows)


class DefinitionsError(ValueError):
    """Definitions that cannot be loaded; the message names the key or rule at fault."""


def read_section(raw: Mapping[str, object], key: str, where: str = "") -> Mapping[str, object]:
    """A nested mapping; a missing section is an empty one so that its fields fall back to defaults."""
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise DefinitionsError(f"{where}{key}: expected a mapping, got {value!r}")
    return value


def read_int(raw: Mapping[str, object], key: str, default: int, where: str = "") -> int:
    """An integer; bools are refused although Python counts them as ints (YAML `yes` is not 1)."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DefinitionsError(f"{where}{key}: expected an integer, got {value!r}")
    return value


def _shown(value: object) -> str:
    """The value as the message quotes it, at most ~40 characters (a 400-digit number is no message)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def read_float(raw: Mapping[str, object], key: str, default: float, where: str = "") -> float:
    """A finite number used in float arithmetic (email decay only; money never goes through floats).

    YAML's `.inf` and `.nan` are refused: no threshold, weight or half-life can be infinite (an infinite
    half-life made every decay crossing overflow inside `apply`)."""
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DefinitionsError(f"{where}{key}: expected a number, got {value!r}")
    try:
        number = float(value)  # an int past ~1e308 has no float: OverflowError
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise DefinitionsError(f"{where}{key}: expected a finite number, got {_shown(value)}")
    return number


def read_str(raw: Mapping[str, object], key: str, default: str, where: str = "") -> str:
    """A non-empty string."""
    value = raw.get(key, default)
    if not isinstance(value, str) or not value:
        raise DefinitionsError(f"{where}{key}: expected a non-empty string, got {value!r}")
    return value


def read_list(raw: Mapping[str, object], key: str, default: list[object], where: str = "") -> list[object]:
    """A YAML sequence."""
    value = raw.get(key, default)
    if not isinstance(value, list):
        raise DefinitionsError(f"{where}{key}: expected a list, got {value!r}")
    return value


def read_decimal(value: object, where: str) -> Decimal:
    """Money as a Decimal written as a string (`"12.50"`) or integer, never a YAML float (inexact), and below
    any amount's limit (`money.MAX_AMOUNT_DIGITS`): Decimal overflowed on a bound such as "1e999999"."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DefinitionsError(f'{where}: expected a decimal string such as "12.50", got {value!r}')
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise DefinitionsError(f"{where}: not a decimal number: {value!r}") from None
    if not result.is_finite():
        raise DefinitionsError(f"{where}: not a finite number: {value!r}")
    if abs(result) > _LARGEST:  # 10^15 itself stays: every amount is below it ("no limit")
        raise DefinitionsError(f"{where}: {value!r} is above 10^{MAX_AMOUNT_DIGITS}: no amount reaches it")
    return result


def read_instant(value: object, where: str) -> datetime:
    """An ISO 8601 date-time with offset (a YAML timestamp or a string), in UTC (where it must fit 1-9999)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise DefinitionsError(f"{where}: not an ISO 8601 date-time: {value!r}") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise DefinitionsError(f"{where}: expected a date-time with an offset, got {value!r}")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: before year 1 in UTC
        raise DefinitionsError(f"{where}: {value.isoformat()} is out of range in UTC") from None
