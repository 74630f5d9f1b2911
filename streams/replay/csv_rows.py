"""One CSV row of an order export, cleaned and parsed (streams.replay.csv_orders reads the file): times in
the export's zone or format, amounts with or without a decimal comma, whole quantities, mapped channels."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Final, Protocol

from segmentation.money import MAX_AMOUNT_DIGITS
from streams.replay.order_events import Line
from streams.replay.pseudonyms import pseudonym

MAX_QUANTITY: Final = 1_000_000_000  # what an event's `quantity` accepts (segmentation/event_types.py)
_PLAIN: Final = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")  # no "1_000", "0x10", "Infinity"
_GROUPED: Final = re.compile(r"[+-]?\d{1,3}(\.\d{3})+(,\d*)?\Z")  # "1.234.567,89" with --decimal-comma


class RowError(ValueError):
    """One row cannot be converted; the message is the reason written to the rejects file."""


class RowOptions(Protocol):
    """What a row's parsing reads of streams.replay.csv_orders.CsvOptions (a protocol: no import cycle)."""

    @property
    def columns(self) -> Mapping[str, str]: ...
    @property
    def time_format(self) -> str | None: ...
    @property
    def zone(self) -> tzinfo: ...
    @property
    def decimal_comma(self) -> bool: ...
    @property
    def channel_values(self) -> Mapping[str, str] | None: ...
    @property
    def default_channel(self) -> str: ...
    @property
    def hash_customer_id(self) -> bool: ...


def _time(text: str, options: RowOptions) -> datetime:
    try:
        moment = (
            datetime.strptime(text, options.time_format)
            if options.time_format
            else datetime.fromisoformat(text.upper().replace("Z", "+00:00"))  # RFC 3339: t, z as T, Z
        )
    except ValueError as exc:
        raise RowError(f"occurred_at: {exc}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=options.zone)  # fold=0: the first of an ambiguous autumn hour
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it: no UTC instant (an event's is one)
        raise RowError(f"occurred_at: {text!r} is outside the years 1-9999 once converted to UTC") from None


def _amount(name: str, text: str, options: RowOptions) -> Decimal:
    raw = text.replace(" ", "").replace("\u00a0", "")
    if options.decimal_comma:
        if "." in raw and not _GROUPED.match(raw):  # "12.5" is no thousands grouping: never read it as 125
            raise RowError(f"{name}: {text!r} has a '.' that is not a thousands separator (--decimal-comma)")
        raw = raw.replace(".", "").replace(",", ".")
    if not _PLAIN.match(raw):  # Decimal() alone takes "1_000" (as 1000) and "NaN"
        raise RowError(f"{name}: not a number: {text!r}")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise RowError(f"{name}: not a number: {text!r}") from None
    if not value.is_finite():
        raise RowError(f"{name}: not a finite number: {text!r}")
    if value and value.adjusted() >= MAX_AMOUNT_DIGITS:  # as events; 1e1000000 overflowed a line's sum
        raise RowError(f"{name}: {text!r} is not below 10^{MAX_AMOUNT_DIGITS}")
    return value


def _quantity(text: str) -> int:
    """A whole number of items, 1 to the events' limit: a fraction is refused, never truncated."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise RowError(f"quantity: not an integer: {text!r}") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise RowError(f"quantity: not an integer: {text!r}")
    if not 1 <= value <= MAX_QUANTITY:  # compared as a Decimal: int() of 1e999999 would take minutes
        raise RowError(f"quantity: must be from 1 to {MAX_QUANTITY}, got {text!r}")
    return int(value)


def _channel(text: str, options: RowOptions) -> str:
    if not text or options.channel_values is None:
        return text.lower()
    return options.channel_values.get(text.lower(), options.default_channel)


def read_line(row: Mapping[str, str | None], number: int, options: RowOptions) -> Line:
    """One row's cleaned and parsed values; a problem is kept as `error` (its order is then rejected)."""
    col = options.columns

    def get(name: str) -> str:
        return (row.get(col[name]) or "").strip() if name in col else ""

    line = Line(number, row, get("order_id"))
    try:
        customer = get("customer_id")
        line.customer = pseudonym(customer) if customer and options.hash_customer_id else customer
        when = get("occurred_at")
        line.at = _time(when, options) if when else None
        line.currency = get("currency").upper()
        line.channel = _channel(get("channel"), options)
        line.coupon = get("coupon")
        line.status = get("status")
        for name in ("amount", "total", "price", "refunded"):
            text = get(name)
            setattr(line, name, _amount(name, text, options) if text else None)
        for name in ("total", "price", "refunded"):
            if (getattr(line, name) or 0) < 0:
                raise RowError(f"{name}: must not be negative, got {get(name)!r}")
        quantity = get("quantity")
        if quantity:
            line.quantity = _quantity(quantity)
        line.sku = get("sku") or get("item_name")[:128]
        if line.amount is not None and line.amount < 0 and "order_id" not in col:
            raise RowError("negative amount (a refund) needs the order_id column to be mapped")
        if line.amount is not None and line.amount < 0 and not line.order_id:
            raise RowError("negative amount (a refund) without an order id")
    except RowError as exc:
        line.error = str(exc)
    return line
