"""One order's rows -> its events: a purchase (items, amount, coupon) and the refunds, or the rejections.

Order-level values (customer, time, currency, channel, total, coupon, refunded) may be blank on an order's
later rows; two different non-blank values reject the whole order. Any failing row rejects its whole order
too (its total would be wrong): every row of it goes to the rejects file, with the reason.

Event ids: `csv-` + the first 32 hex digits of sha256 over the normalised event (customer, UTC time, type,
amount, currency, channel, order id, coupon, items; plus the line number for a row without an order id, so
two identical such rows are two purchases). A refund row's id adds `n=<k>` from its second identical copy
on (two equal return lines of one order at one time are two refunds, not a duplicate), counted in file
order, so an export imported again gives every refund the same id. Same file, same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson

from segmentation import InvalidEvent, parse_event


class CsvOptions(Protocol):
    """What grouping reads of streams.replay.csv_orders.CsvOptions (a protocol: no import cycle)."""

    @property
    def columns(self) -> Mapping[str, str]: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def default_channel(self) -> str: ...
    @property
    def order_window(self) -> int: ...
    @property
    def not_purchases(self) -> frozenset[str]: ...


FIELD_NAMES = {"customer": "customer_id", "at": "occurred_at"}


@dataclass
class Line:
    """One CSV row, cleaned and parsed (streams.replay.csv_rows.read_line)."""

    number: int
    row: Mapping[Any, Any]
    order_id: str
    customer: str = ""
    at: datetime | None = None
    currency: str = ""
    channel: str = ""
    coupon: str = ""
    status: str = ""
    amount: Decimal | None = None
    total: Decimal | None = None
    price: Decimal | None = None
    refunded: Decimal | None = None
    quantity: int | None = None
    sku: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Emitted:
    line: int
    customer: str
    value: bytes
    kind: str  # purchase | refund


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    row: Mapping[Any, Any]


class OrderError(ValueError):
    """The order (or row) cannot become an event: the message is the reason."""


def _text(value: Decimal) -> str:
    return str(value).replace("E", "e")


def _event_id(parts: list[str]) -> str:
    return "csv-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _one(order_id: str | None, lines: list[Line], name: str) -> Any:
    """The order-level value of `name`: the same on every line that has one, else OrderError."""
    seen: tuple[int, Any] | None = None
    for line in lines:
        value = getattr(line, name)
        if value is None or value == "":
            continue
        if seen is None:
            seen = (line.number, value)
        elif value != seen[1]:
            label = FIELD_NAMES.get(name, name)
            raise OrderError(
                f"order {order_id!r}: lines disagree on {label}: line {seen[0]} has {_show(seen[1])},"
                f" line {line.number} has {_show(value)}"
            )
    return None if seen is None else seen[1]


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return repr(str(value))


def order_events(order_id: str | None, lines: list[Line], options: CsvOptions) -> list[Emitted | Rejected]:
    """The purchase (and the refund of `refunded`) of one order, or every line rejected with the reason."""
    failed = next((line for line in lines if line.error), None)
    try:
        if failed is not None:
            raise OrderError(failed.error)
        return _events(order_id, lines, options)
    except (OrderError, InvalidEvent) as exc:
        reason = str(exc)
        return [
            Rejected(
                line.number,
                line.error
                if line.error
                else reason
                if failed is None
                else f"order {order_id!r} rejected: line {failed.number}: {reason}",
                line.row,
            )
            for line in lines
        ]


def _events(order_id: str | None, lines: list[Line], options: CsvOptions) -> list[Emitted | Rejected]:
    customer, at = _one(order_id, lines, "customer"), _one(order_id, lines, "at")
    currency = _one(order_id, lines, "currency") or options.currency
    channel = _one(order_id, lines, "channel") or options.default_channel
    total, refunded = _one(order_id, lines, "total"), _one(order_id, lines, "refunded")
    coupon, status = _one(order_id, lines, "coupon"), _one(order_id, lines, "status")
    if status and status.lower() in options.not_purchases:
        raise OrderError(f"order {order_id!r}: status {status!r}: not a purchase (no money was taken)")
    if not customer:
        raise OrderError("customer_id: empty")
    if at is None:
        raise OrderError("occurred_at: empty")
    if not currency:
        raise OrderError("currency: empty, and no --currency given")
    amount = total if total is not None else _sum_of_lines(order_id, lines)
    items: list[dict[str, Any]] = []
    for line in lines:
        if line.quantity is None and line.price is None and not line.sku:
            continue
        item: dict[str, Any] = {"sku": line.sku or "unspecified", "quantity": line.quantity or 1}
        if line.price is not None:
            item["unit_price"] = _text(line.price)
        items.append(item)
    occurred = at.isoformat().replace("+00:00", "Z")
    parts = [customer, occurred, "purchase", _text(amount), currency, channel, order_id or ""]
    parts += [f"coupon={bool(coupon)}"] if "coupon" in options.columns else []
    parts += [f"{i['sku']}:{i['quantity']}:{i.get('unit_price', '')}" for i in items]
    if order_id is None:
        parts.append(f"line={lines[0].number}")
    event_id = _event_id(parts)
    event: dict[str, Any] = {
        "event_id": event_id,
        "customer_id": customer,
        "occurred_at": occurred,
        "schema_version": 1,
        "type": "purchase",
        "order_id": order_id or event_id,
        "amount": _text(amount),
        "currency": currency,
        "channel": channel,
    }
    if items:
        event["items"] = items
    if "coupon" in options.columns:
        event["coupon_used"] = bool(coupon)
    out: list[Emitted | Rejected] = [_emitted(lines[0].number, customer, event)]
    if refunded:
        refund = _refund_event(customer, occurred, refunded, currency, order_id or event_id, "refunded")
        out.append(_emitted(lines[0].number, customer, refund))
    return out


def _sum_of_lines(order_id: str | None, lines: list[Line]) -> Decimal:
    """The order's amount without a total: the lines' amounts, else quantity x unit price."""
    total = Decimal(0)
    for line in lines:
        if line.amount is not None:
            total += line.amount
        elif line.price is not None:
            total += line.price * (line.quantity or 1)
        else:
            what = "order" if order_id is None else f"order {order_id!r}"
            raise OrderError(f"{what}: line {line.number} has no amount, no price, and there is no total")
    return total


def _refund_event(
    customer: str, occurred: str, amount: Decimal, currency: str, order_id: str, kind: str, copy: int = 1
) -> dict[str, Any]:
    parts = [customer, occurred, kind, _text(amount), currency, order_id]
    if copy > 1:  # the first copy's id is what it always was
        parts.append(f"n={copy}")
    return {
        "event_id": _event_id(parts),
        "customer_id": customer,
        "occurred_at": occurred,
        "schema_version": 1,
        "type": "refund",
        "order_id": order_id,
        "amount": _text(amount),
        "currency": currency,
    }


def refund_row(line: Line, options: CsvOptions, copy: int = 1) -> list[Emitted | Rejected]:
    """A negative row: a refund of |amount| for its order, at the row's time (`copy`: how many rows equal
    to this one came before it, plus one)."""
    try:
        if not line.customer:
            raise OrderError("customer_id: empty")
        if line.at is None:
            raise OrderError("occurred_at: empty")
        currency = line.currency or options.currency
        if not currency:
            raise OrderError("currency: empty, and no --currency given")
        assert line.amount is not None
        occurred = line.at.isoformat().replace("+00:00", "Z")
        event = _refund_event(line.customer, occurred, -line.amount, currency, line.order_id, "refund", copy)
        return [_emitted(line.number, line.customer, event)]
    except (OrderError, InvalidEvent) as exc:
        return [Rejected(line.number, str(exc), line.row)]


def _emitted(number: int, customer: str, event: dict[str, Any]) -> Emitted:
    value = orjson.dumps(event)
    parse_event(value)  # InvalidEvent: the order is rejected with the core's reason
    return Emitted(number, customer, value, event["type"])
