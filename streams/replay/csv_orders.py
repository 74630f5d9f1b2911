"""CSV exports of orders turned into `purchase` / `refund` events, deterministically.

The user maps columns (`customer_id`, `occurred_at`, `amount` required; `order_id`, `channel`, `currency`,
`quantity` optional) and says how times are written (`--time-format`, strptime syntax, default ISO 8601)
and in which zone naive times are (`--timezone`, default UTC).

* A row with amount >= 0 is a `purchase`; a negative amount is a `refund` of |amount| (order exports list
  returns as negative lines). A refund needs the order id column: without it the row is rejected.
* Event ids come from the row's content only: `csv-` + the first 32 hex digits of sha256 over the normalised
  fields (customer, UTC time, type, amount, currency, channel, order id, quantity), plus the line number when
  no order id column is mapped (two identical rows without an order id are two purchases). So the same file
  replays identically, and an order exported twice (same normalised row, same order id) counts once: the
  core ignores a duplicate event id.
* Without an order id column the order id is the event id. Quantity becomes one item line
  `{"sku": "unspecified", "quantity": q}`.
* A row that cannot be converted, or whose event the core's parser rejects, goes to the rejects CSV with its
  line number and the reason; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from segmentation import InvalidEvent, parse_event

REQUIRED: Final = ("customer_id", "occurred_at", "amount")
OPTIONAL: Final = ("order_id", "channel", "currency", "quantity")
CHANNELS: Final = ("web", "store", "app", "phone")


class CsvMappingError(ValueError):
    """The column mapping or the options are unusable (nothing was read): exit code 2, bad input."""

    exit_code = 2


class RowError(ValueError):
    """One row cannot be converted; the message is the reason written to the rejects file."""


@dataclass(frozen=True)
class CsvOptions:
    columns: Mapping[str, str]  # field -> column header
    time_format: str | None = None  # strptime format; None: ISO 8601
    timezone: str = "UTC"  # zone of naive times
    default_channel: str = "web"
    default_currency: str = "EUR"
    delimiter: str = ","
    decimal_comma: bool = False  # "12,50" means 12.50
    encoding: str = "utf-8-sig"
    zone: ZoneInfo = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        missing = [f for f in REQUIRED if f not in self.columns]
        unknown = [f for f in self.columns if f not in REQUIRED + OPTIONAL]
        if missing or unknown:
            raise CsvMappingError(
                f"column mapping: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}"
                f" (fields: {', '.join(REQUIRED + OPTIONAL)})"
            )
        if self.default_channel not in CHANNELS:
            raise CsvMappingError(f"default channel must be one of {CHANNELS}")
        try:
            object.__setattr__(self, "zone", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CsvMappingError(f"unknown time zone {self.timezone!r}") from exc


def parse_mapping(text: str) -> dict[str, str]:
    """`customer_id=cust,occurred_at=date,amount=total` -> {field: column}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, column = part.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise CsvMappingError(f"bad mapping entry {part!r}: expected field=column")
        out[name.strip()] = column.strip()
    return out


def _clean(value: str | None) -> str:
    return (value or "").strip()


def _time(text: str, options: CsvOptions) -> datetime:
    if not text:
        raise RowError("occurred_at: empty")
    try:
        moment = (
            datetime.strptime(text, options.time_format)
            if options.time_format
            else datetime.fromisoformat(text.replace("Z", "+00:00"))
        )
    except ValueError as exc:
        raise RowError(f"occurred_at: {exc}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=options.zone)  # fold=0: the first of an ambiguous autumn hour
    return moment.astimezone(UTC)


def _amount(text: str, options: CsvOptions) -> Decimal:
    raw = text.replace(" ", "").replace("\u00a0", "")
    if options.decimal_comma:
        raw = raw.replace(".", "").replace(",", ".")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise RowError(f"amount: not a number: {text!r}") from None
    if not value.is_finite():
        raise RowError(f"amount: not a finite number: {text!r}")
    return value


def convert_row(row: Mapping[str, str | None], line: int, options: CsvOptions) -> tuple[str, bytes]:
    """(customer id, event JSON) for one row; raises RowError with the reason."""
    col = options.columns

    def get(name: str) -> str:
        return _clean(row.get(col[name])) if name in col else ""

    customer = get("customer_id")
    if not customer:
        raise RowError("customer_id: empty")
    at = _time(get("occurred_at"), options)
    amount = _amount(get("amount"), options)
    currency = (get("currency") or options.default_currency).upper()
    channel = (get("channel") or options.default_channel).lower()
    order_id = get("order_id")
    quantity_text = get("quantity")
    quantity: int | None = None
    if quantity_text:
        try:
            quantity = int(Decimal(quantity_text))
        except (InvalidOperation, ValueError):
            raise RowError(f"quantity: not an integer: {quantity_text!r}") from None
        if quantity < 1:
            raise RowError(f"quantity: must be >= 1, got {quantity_text!r}")
    kind = "refund" if amount < 0 else "purchase"
    if kind == "refund" and "order_id" not in col:
        raise RowError("negative amount (a refund) needs the order_id column to be mapped")
    if kind == "refund" and not order_id:
        raise RowError("negative amount (a refund) without an order id")
    amount_text = str(abs(amount)).replace("E", "e")
    occurred = at.isoformat().replace("+00:00", "Z")
    normalised = "\x1f".join(
        [customer, occurred, kind, amount_text, currency, channel, order_id, str(quantity or "")]
    )
    if "order_id" not in col:
        normalised += f"\x1fline={line}"
    event_id = "csv-" + hashlib.sha256(normalised.encode()).hexdigest()[:32]
    event: dict[str, Any] = {
        "event_id": event_id,
        "customer_id": customer,
        "occurred_at": occurred,
        "schema_version": 1,
        "type": kind,
        "order_id": order_id or event_id,
        "amount": amount_text,
        "currency": currency,
    }
    if kind == "purchase":
        event["channel"] = channel
        if quantity is not None:
            event["items"] = [{"sku": "unspecified", "quantity": quantity}]
    value = orjson.dumps(event)
    try:
        parse_event(value)
    except InvalidEvent as exc:
        raise RowError(str(exc)) from None
    return customer, value


class CsvOrders:
    """Rows of a CSV export as keyed event lines; failing rows written to `rejects` (a CSV)."""

    def __init__(self, path: Path, options: CsvOptions, rejects: Path) -> None:
        self.path = path
        self.options = options
        self.rejects_path = rejects
        self.rejected = 0
        self.rows = 0
        self.size = path.stat().st_size
        self.position = 0  # bytes read so far (for the progress bar)

    def check_header(self) -> None:
        """Raise CsvMappingError now if a mapped column is not in the header (or the file cannot be read
        as text): called before the target namespace or the rejects file is touched, so a retry works."""
        try:
            with self.path.open(newline="", encoding=self.options.encoding) as handle:
                header = next(csv.reader(handle, delimiter=self.options.delimiter), [])
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CsvMappingError(f"cannot read {self.path} as CSV: {exc}") from None
        self._check(header)

    def _check(self, header: list[str]) -> None:
        absent = [c for c in self.options.columns.values() if c not in header]
        if absent:
            raise CsvMappingError(f"columns not in the header of {self.path}: {absent} (header: {header})")

    def keyed(self) -> Iterator[tuple[int, str | None, bytes]]:
        with (
            self.path.open(newline="", encoding=self.options.encoding) as handle,
            self.rejects_path.open("w", newline="", encoding="utf-8") as rejects_file,
        ):
            yield from self._rows(handle, rejects_file)

    def _rows(self, handle: IO[str], rejects_file: IO[str]) -> Iterator[tuple[int, str | None, bytes]]:
        reader = csv.DictReader(handle, delimiter=self.options.delimiter)
        header = list(reader.fieldnames or [])
        self._check(header)
        writer = csv.writer(rejects_file)
        writer.writerow(["line", "reason", *header])
        line = reader.line_num + 1
        raw: Any = getattr(handle, "buffer", None)
        for row in reader:
            self.rows += 1
            if raw is not None and self.rows % 4096 == 0:
                self.position = raw.tell()
            try:
                if None in row:
                    raise RowError(f"{len(header) + len(row[None])} fields, header has {len(header)}")
                customer, value = convert_row(row, line, self.options)
            except RowError as exc:
                self.rejected += 1
                writer.writerow([line, str(exc), *(row.get(c) or "" for c in header)])
            else:
                yield line, customer, value
            line = reader.line_num + 1
        self.position = self.size
