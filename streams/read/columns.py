"""Columns of an audience export: which customer-hash fields each reads and how it is written.

A marketer names columns (`customer_id,segment:lifecycle,rfm:r,net,last_purchase_at`); each maps to stored
fields (segmentation/state_mapping.py) and to a value a person or a CRM import reads: money in major units
(a decimal string, never a float) with its currency, times in ISO 8601 UTC, scores as integers. Declared
personal data (birth year, gender, region, household) is marked `declared`: it is never in the default set
and needs the `pii:read` scope (HTTP) or `--declared` (CLI), as the profile does (docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.read.profile import Money, money

__all__ = [
    "DEFAULT_COLUMNS",
    "Column",
    "ColumnError",
    "catalogue",
    "parse_columns",
]

Raw = Sequence[str | None]  # the HMGET answer for one customer, in `fields_of(columns)` order


class ColumnError(ValueError):
    """An unknown column, or a declared one without the right to it (exit code 2 / HTTP 400 or 403)."""

    exit_code = 2

    def __init__(self, message: str, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


@dataclass(frozen=True)
class Column:
    """`fields` are read with HMGET; `value` turns their stored strings into the exported value."""

    name: str
    fields: tuple[str, ...]
    value: Callable[[Raw], Any]
    declared: bool = False


DEFAULT_COLUMNS = (
    "customer_id",
    "segment:lifecycle",
    "segment:rfm",
    "segment:value",
    "rfm:r",
    "rfm:f",
    "rfm:m",
    "orders",
    "net",
    "currency",
    "last_purchase_at",
)

_TIMES = (
    "last_purchase_at",
    "first_purchase_at",
    "first_seen_at",
    "last_seen_at",
    "lifecycle_since",
    "reactivated_at",
    "clock",
)
_INTS = ("rfm:r", "rfm:f", "rfm:m", "orders", "refunds", "loyalty_points", "survey_score")
_MONEY = {"net": "monetary_minor", "gross": "gross_minor", "refunded": "refunded_minor"}
_DECLARED = {"birth_year": int, "household": int, "gender": str, "region": str}


def _text(raw: Raw) -> str | None:
    return raw[0] or None


def _int(raw: Raw) -> int | None:
    return int(raw[0]) if raw[0] else None


def _time(raw: Raw) -> str | None:
    """Stored as canonical ISO 8601 UTC (`+00:00`); written with `Z`, which every importer reads."""
    text = raw[0]
    if not text:
        return None
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _bool(raw: Raw) -> bool | None:
    return None if not raw[0] else raw[0] == "1"


def _money(raw: Raw) -> Money | None:
    minor, currency = raw
    if not currency:
        return None
    return money(int(minor) if minor else 0, currency)


def catalogue(grids: Iterable[str]) -> dict[str, Column]:
    """Every column an export can name, for the definitions' `grids`."""
    columns: dict[str, Column] = {"customer_id": Column("customer_id", (), lambda raw: None)}
    for grid in grids:
        name = f"segment:{grid}"
        columns[name] = Column(name, (name,), _text)
    for name in _INTS:
        columns[name] = Column(name, (name,), _int)
    for name in _TIMES:
        columns[name] = Column(name, (name,), _time)
    for name, field in _MONEY.items():
        columns[name] = Column(name, (field, "currency"), _money)
    for name in ("currency", "loyalty_tier"):
        columns[name] = Column(name, (name,), _text)
    columns["email:unsubscribed"] = Column("email:unsubscribed", ("email:unsubscribed",), _bool)
    for name, kind in _DECLARED.items():
        columns[name] = Column(name, (name,), _int if kind is int else _text, declared=True)
    return columns


def parse_columns(text: str | None, known: Mapping[str, Column], declared: bool) -> tuple[Column, ...]:
    """`a,b,c` (None or empty: the default set); unknown or repeated names and declared data without the
    right to it are refused with the list of what is known."""
    names = DEFAULT_COLUMNS if not text else tuple(n.strip() for n in text.split(","))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ColumnError(f"unknown column(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise ColumnError("a column is named twice")
    personal = [n for n in names if known[n].declared]
    if personal and not declared:
        raise ColumnError(
            f"column(s) {', '.join(personal)} hold declared personal data: they need the pii:read scope"
            " (HTTP) or --declared (CLI); docs/privacy.md",
            forbidden=True,
        )
    return tuple(known[n] for n in names)
