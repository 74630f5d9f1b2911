"""CSV exports of orders turned into `purchase` / `refund` events, deterministically.

The user maps columns to fields (or names a preset, streams.replay.presets) and says how times are written
(`--time-format`, strptime syntax, default ISO 8601) and in which zone naive times are (`--timezone`).

* Order-level fields: `customer_id`, `occurred_at` (required), `order_id`, `currency`, `channel`, `total`,
  `coupon`, `refunded`, `status` (an order whose status is `voided` is rejected: no money was taken).
  Line-level fields: `amount` (the row's amount), `quantity`, `price` (unit price),
  `sku`, `item_name`. At least one of `amount`, `total`, `price` must be mapped.
* With an `order_id` column, the rows of one order become **one purchase** (streams.replay.order_groups
  groups them, streams.replay.order_events makes the events): its lines are the items, its amount the
  `total` (else the sum of the lines). Without one, every row is a purchase of its own.
* A row with a negative `amount` is a `refund` of |amount| for its order id (returns listed as negative
  lines); `refunded` > 0 on an order adds a refund of that amount at the order's time.
* Money needs a currency: a `currency` column, or `--currency` for every amount without one. The
  definitions' base currency is never assumed: a mapping without a currency column and no `--currency` is
  refused before anything is read.
* Event ids come from the content only (see order_events), so the same file replays identically.
* A row that cannot be converted, or whose order's event the core's parser rejects, goes to the rejects CSV
  with its line number and the reason; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from segmentation.currencies import CURRENCY_EXPONENT
from streams.replay.csv_rows import read_line
from streams.replay.order_events import Emitted, Line, Rejected
from streams.replay.order_groups import OrderGroups
from streams.replay.sources import SourceError

REQUIRED: Final = ("customer_id", "occurred_at")
MONEY: Final = ("amount", "total", "price")  # at least one
OPTIONAL: Final = (
    "order_id", "channel", "currency", "quantity", "amount", "total", "price", "sku", "item_name", "coupon",
    "refunded", "status",
)  # fmt: skip
CHANNELS: Final = ("web", "store", "app", "phone")
DEFAULT_ORDER_WINDOW: Final = 10_000
NOT_PURCHASES: Final = frozenset({"voided"})  # Shopify: the payment authorisation was cancelled
# The csv module's own limit per cell is 128 KiB: a long order note in a column nobody maps stopped the whole
# import with a traceback. A cell past this one is no export's (a quote never closed takes in the rest of the
# file): the import stops there, naming the row's line, rather than holding the file in memory.
MAX_FIELD: Final = 16 << 20


class CsvMappingError(ValueError):
    """The column mapping or the options are unusable (nothing was read): exit code 2, bad input."""

    exit_code = 2


@dataclass(frozen=True)
class CsvOptions:
    columns: Mapping[str, str]  # field -> column header
    time_format: str | None = None  # strptime format; None: ISO 8601
    timezone: str = "UTC"  # zone of naive times
    default_channel: str = "web"
    currency: str | None = None  # of amounts without a currency column (or with an empty cell)
    delimiter: str = ","
    decimal_comma: bool = False  # "12,50" means 12.50
    encoding: str = "utf-8-sig"
    channel_values: Mapping[str, str] | None = None  # export's value -> channel; others: default_channel
    hash_customer_id: bool = False  # customer id = pseudonym of the column's value (e.g. an email)
    order_window: int = DEFAULT_ORDER_WINDOW  # rows of one order lie within this many rows
    not_purchases: frozenset[str] = NOT_PURCHASES  # order statuses rejected as "no money was taken"
    zone: ZoneInfo = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        missing = [f for f in REQUIRED if f not in self.columns]
        unknown = [f for f in self.columns if f not in REQUIRED + OPTIONAL]
        if missing or unknown or not any(f in self.columns for f in MONEY):
            raise CsvMappingError(
                f"column mapping: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}"
                f", and at least one of {', '.join(MONEY)} (fields: {', '.join(REQUIRED + OPTIONAL)})"
            )
        if self.default_channel not in CHANNELS:
            raise CsvMappingError(f"default channel must be one of {CHANNELS}")
        if self.currency is None and "currency" not in self.columns:
            raise CsvMappingError(
                "no currency column is mapped: say the currency of the amounts with --currency (e.g."
                " --currency EUR); the definitions' base currency is never assumed"
            )
        if self.currency is not None and self.currency not in CURRENCY_EXPONENT:
            raise CsvMappingError(f"--currency {self.currency!r} is not an ISO 4217 code known here")
        if self.order_window < 1:
            raise CsvMappingError("--order-window must be >= 1")
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


def _open(path: Path, encoding: str, errors: str = "strict") -> IO[str]:
    """The file as text; a gzip file (known by its first bytes, as a JSONL source) decompressed on the way."""
    with path.open("rb") as raw:
        packed = raw.read(2) == b"\x1f\x8b"
    if packed:
        return gzip.open(path, "rt", encoding=encoding, errors=errors, newline="")
    return path.open(newline="", encoding=encoding, errors=errors)


def read_header(path: Path, delimiter: str = ",", encoding: str = "utf-8-sig") -> list[str]:
    """The CSV file's header row; CsvMappingError when it cannot be read as CSV text."""
    try:
        with _open(path, encoding) as handle:
            return next(csv.reader(handle, delimiter=delimiter), [])
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise CsvMappingError(f"cannot read {path} as CSV: {exc}") from None
    except LookupError:
        raise CsvMappingError(f"--encoding {encoding!r} is not a text encoding known here") from None


def _as_dict(header: list[str], values: list[str]) -> dict[Any, Any]:
    """A row as DictReader makes it: extra fields under None, missing ones None (`_shape` refuses both)."""
    row: dict[Any, Any] = dict(zip(header, values, strict=False))
    if len(values) > len(header):
        row[None] = values[len(header) :]
    for name in header[len(values) :]:
        row[name] = None
    return row


def _shape(row: Mapping[str | None, Any], header: list[str]) -> str | None:
    """Why a row cannot be read as the header says, or None: more or fewer fields than the header (a cut
    line must not become an order with defaults in its missing cells), or bytes that are not text in the
    file's encoding (kept as surrogates, so one bad byte rejects its row instead of ending the import)."""
    if None in row:
        return f"{len(header) + len(row[None])} fields, header has {len(header)}"
    if None in row.values():
        return f"{sum(v is not None for v in row.values())} fields, header has {len(header)}"
    try:
        "".join(row.values()).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("utf-8", "surrogateescape")
        return f"bytes {bad!r} are not valid text in the file's encoding"
    return None


class CsvOrders:
    """Rows of a CSV export as keyed event lines; failing rows written to `rejects` (a CSV)."""

    def __init__(self, path: Path, options: CsvOptions, rejects: Path) -> None:
        self.path = path
        self.options = options
        self.rejects_path = rejects
        self.rejected = 0
        self.rows = 0
        self.purchases = 0
        self.refunds = 0
        self.size = path.stat().st_size
        self.position = 0  # bytes read so far (for the progress bar)

    def check_header(self) -> None:
        """Raise CsvMappingError now if a mapped column is not in the header (or the file cannot be read
        as text): called before the target namespace or the rejects file is touched, so a retry works."""
        self._check(read_header(self.path, self.options.delimiter, self.options.encoding))

    def _check(self, header: list[str]) -> None:
        absent = [c for c in self.options.columns.values() if c not in header]
        if absent:
            raise CsvMappingError(f"columns not in the header of {self.path}: {absent} (header: {header})")
        # a row is read by header name: of two columns named alike, only the last one's cells would be seen
        twice = sorted({c for c in self.options.columns.values() if header.count(c) > 1})
        if twice:
            counts = ", ".join(f"{c!r} {header.count(c)} times" for c in twice)
            raise CsvMappingError(
                f"mapped columns named more than once in the header of {self.path}: {counts}"
            )

    def keyed(self) -> Iterator[tuple[int, str | None, bytes]]:
        lossless = "surrogateescape"  # a byte that is not text rejects its row, kept as is in the rejects
        with (
            _open(self.path, self.options.encoding, lossless) as handle,
            self.rejects_path.open("w", newline="", encoding="utf-8", errors=lossless) as rejects_file,
        ):
            yield from self._rows(handle, rejects_file)

    def _rows(self, handle: IO[str], rejects_file: IO[str]) -> Iterator[tuple[int, str | None, bytes]]:
        # csv.reader, not DictReader: DictReader skips blank lines unseen, so the line number taken after a
        # row named the first blank line, not the next row's (rejects must name the line to fix)
        reader = csv.reader(handle, delimiter=self.options.delimiter)
        header = next(reader, [])
        self._check(header)
        writer = csv.writer(rejects_file)
        writer.writerow(["line", "reason", *header])
        groups = OrderGroups(self.options)
        number = reader.line_num + 1
        raw: Any = getattr(handle, "buffer", None)
        raw = getattr(raw, "fileobj", raw)  # a gzip file: the progress is the compressed offset

        def flush(outputs: list[Emitted | Rejected]) -> Iterator[tuple[int, str | None, bytes]]:
            for out in outputs:
                if isinstance(out, Rejected):
                    self.rejected += 1
                    writer.writerow([out.line, out.reason, *(out.row.get(c) or "" for c in header)])
                else:
                    if out.kind == "purchase":
                        self.purchases += 1
                    else:
                        self.refunds += 1
                    yield out.line, out.customer, out.value

        limit = csv.field_size_limit(MAX_FIELD)  # the module's, for every reader: put back at the end
        try:
            for values in reader:
                if not values:  # a blank line
                    number = reader.line_num + 1
                    continue
                row = _as_dict(header, values)
                self.rows += 1
                if raw is not None and self.rows % 4096 == 0:
                    self.position = raw.tell()
                problem = _shape(row, header)
                if problem is not None:
                    line = Line(number, row, "")
                    line.error = problem
                else:
                    line = read_line(row, number, self.options)
                yield from flush(groups.add(line))
                number = reader.line_num + 1
        except (csv.Error, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise SourceError(
                f"{self.path}: line {number}: {exc or type(exc).__name__}: the import stops there (a quote"
                " never closed, or gzip data cut short or damaged: import the whole file once complete)"
            ) from None
        finally:
            csv.field_size_limit(limit)
        yield from flush(groups.finish())
        self.position = self.size
