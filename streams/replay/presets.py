"""Column mappings of common shop exports, so `segstream replay orders.csv --preset shopify` needs no --map.

Why presets: an export's layout is fixed by the shop system, and mapping a dozen columns by hand (with the
right time format) is where imports go wrong. `--map` entries still override or add to a preset's.
Each preset is documented in docs/replay.md ("Presets"); keep the two in step.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from streams.replay.csv_orders import CsvMappingError, CsvOptions, parse_mapping


@dataclass(frozen=True)
class Preset:
    columns: Mapping[str, str]  # field -> column header
    time_format: str | None = None
    channel_values: Mapping[str, str] | None = None
    hash_customer_id: bool = False


ALWAYS: Final = ("order_id", "customer_id", "occurred_at")
PRESETS: Final[Mapping[str, Preset]] = {
    # Shopify admin, Orders > Export (CSV for Excel or plain CSV): one row per line item; the order-level
    # columns are filled on the order's first row. No customer id column: the buyer's email, pseudonymised.
    "shopify": Preset(
        columns={
            "order_id": "Name",
            "customer_id": "Email",
            "occurred_at": "Created at",
            "currency": "Currency",
            "total": "Total",
            "coupon": "Discount Code",
            "refunded": "Refunded Amount",
            "status": "Financial Status",
            "channel": "Source",
            "quantity": "Lineitem quantity",
            "item_name": "Lineitem name",
            "price": "Lineitem price",
            "sku": "Lineitem sku",
        },
        time_format="%Y-%m-%d %H:%M:%S %z",  # 2024-01-15 10:23:45 -0500
        channel_values={"web": "web", "pos": "store", "iphone": "app", "android": "app"},
        hash_customer_id=True,
    ),
    # A neutral one-row-per-line layout for exports made by hand or by a script (ISO 8601 times).
    "generic": Preset(
        columns={
            "order_id": "order_id",
            "customer_id": "customer_id",
            "occurred_at": "created_at",
            "currency": "currency",
            "total": "total",
            "coupon": "coupon",
            "refunded": "refunded",
            "status": "status",
            "channel": "channel",
            "quantity": "quantity",
            "price": "unit_price",
            "sku": "sku",
        },
    ),
}


# The CSV import's options and their defaults: given for another source, they would be ignored in silence
_CSV_ONLY = (
    ("columns", "--map", None), ("preset", "--preset", None), ("time_format", "--time-format", None),
    ("timezone", "--timezone", "UTC"), ("default_channel", "--default-channel", "web"),
    ("currency", "--currency", None), ("order_window", "--order-window", 10_000),
    ("hash_customer_id", "--hash-customer-id", None), ("delimiter", "--delimiter", ","),
    ("decimal_comma", "--decimal-comma", False), ("encoding", "--encoding", "utf-8-sig"),
)  # fmt: skip


def options_misplaced(args: argparse.Namespace, csv: bool) -> str | None:
    """Why options given are not for this source (a file replayed whole despite --since, a currency given
    to no event), or None: refused, not ignored, as --processes is for a CSV import."""
    if args.since and not args.source.startswith("kafka:"):
        return "--since applies to a kafka: source only (a file is replayed whole: cut it first)"
    given = [flag for name, flag, default in _CSV_ONLY if getattr(args, name) != default]
    if given and not csv:
        return (
            f"{', '.join(given)}: options of a CSV import (--format csv or a .csv file), not of this source"
        )
    return None


def csv_options(args: argparse.Namespace, header: list[str] | None = None) -> CsvOptions:
    """CsvOptions from `segstream replay` arguments: the preset (if any), then --map and the other flags.
    A preset's optional columns that the file's `header` lacks are left out (exports vary: a shop without
    discounts may have no discount column); its order id, customer and time columns are always mapped."""
    preset = PRESETS[args.preset] if args.preset else Preset(columns={})
    if not args.columns and not args.preset:
        raise CsvMappingError("a CSV source needs --map or --preset (see --help)")
    mapped = {
        name: column
        for name, column in preset.columns.items()
        if header is None or column in header or name in ALWAYS
    }
    columns = {**mapped, **parse_mapping(args.columns or "")}
    hashed = preset.hash_customer_id if args.hash_customer_id is None else args.hash_customer_id
    return CsvOptions(
        columns,
        time_format=args.time_format or preset.time_format,
        timezone=args.timezone,
        default_channel=args.default_channel,
        currency=args.currency.upper() if args.currency else None,
        delimiter=args.delimiter,
        decimal_comma=args.decimal_comma,
        encoding=args.encoding,
        channel_values=preset.channel_values,
        hash_customer_id=hashed,
        order_window=args.order_window,
    )
