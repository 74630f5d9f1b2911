"""RFM grid: Recency, Frequency and Monetary scored 1-5 against versioned breakpoints, then mapped.

Breakpoints live in the definitions and change only with a new definitions version, so a customer's
score moves because the customer changed (or time passed), never because the population drifted.
R = 5 - (number of recency breakpoints, in days, already reached); F and M = 1 + (number of
breakpoints reached by orders / net monetary). The map is a list of R x F x M ranges, first match
wins; it is checked at load time to cover all 125 cells. Customers without purchase are
`no_purchase`. Only R moves with time alone, at last purchase + a recency breakpoint; `next_change`
returns the first such instant at which the *segment* changes. An R change inside one segment is no
transition; the stored R is refreshed whenever the state's clock moves (event or `advance`), so
`rfm:r` is always R as of `clock`.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from segmentation.config_reading import MAX_DAYS, DefinitionsError, read_decimal, read_list, read_str
from segmentation.state import CustomerState

__all__ = ["NO_PURCHASE", "RfmConfig", "assess", "classify", "explain", "next_change", "scores"]

GRID = "rfm"
NO_PURCHASE = "no_purchase"
_SCORES = range(1, 6)


@dataclass(frozen=True, slots=True)
class RfmEntry:
    """One line of the segment map: inclusive score ranges for R, F and M."""

    segment: str
    r: tuple[int, int]
    f: tuple[int, int]
    m: tuple[int, int]

    def covers(self, r: int, f: int, m: int) -> bool:
        return self.r[0] <= r <= self.r[1] and self.f[0] <= f <= self.f[1] and self.m[0] <= m <= self.m[1]


@dataclass(frozen=True, slots=True)
class RfmConfig:
    """Four ascending breakpoints per dimension and the R x F x M segment map (as a 125-cell table)."""

    recency_days: tuple[int, ...]
    frequency_orders: tuple[int, ...]
    monetary: tuple[Decimal, ...]
    monetary_minor: tuple[int, ...]
    entries: tuple[RfmEntry, ...]
    cells: tuple[str, ...]
    recency_deltas: tuple[timedelta, ...] = field(init=False, repr=False, compare=False)
    cell_rules: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "recency_deltas", tuple(timedelta(days=d) for d in self.recency_days))
        texts = []  # the map line deciding each cell, for `explain`
        for index, segment in enumerate(self.cells):
            r, f, m = index // 25 + 1, index // 5 % 5 + 1, index % 5 + 1
            e = next(e for e in self.entries if e.covers(r, f, m))
            texts.append(f"R{e.r[0]}-{e.r[1]} F{e.f[0]}-{e.f[1]} M{e.m[0]}-{e.m[1]} -> {segment}")
        object.__setattr__(self, "cell_rules", tuple(texts))

    @property
    def segments(self) -> tuple[str, ...]:
        """Distinct segment names in map order, then `no_purchase`."""
        return (*dict.fromkeys(entry.segment for entry in self.entries), NO_PURCHASE)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object], minor_exponent: int) -> RfmConfig:
        recency = tuple(
            _breakpoint_int(v, f"rfm.recency_days[{i}]") for i, v in enumerate(_four(raw, "recency_days"))
        )
        frequency = tuple(
            _breakpoint_int(v, f"rfm.frequency_orders[{i}]")
            for i, v in enumerate(_four(raw, "frequency_orders"))
        )
        monetary = tuple(read_decimal(v, f"rfm.monetary[{i}]") for i, v in enumerate(_four(raw, "monetary")))
        checks: tuple[tuple[str, tuple[int | Decimal, ...]], ...] = (
            ("recency_days", recency),
            ("frequency_orders", frequency),
            ("monetary", monetary),
        )
        for name, values in checks:
            if any(b <= a for a, b in itertools.pairwise(values)) or values[0] <= 0:
                raise DefinitionsError(f"rfm.{name}: breakpoints must be positive and strictly ascending")
        if recency[-1] > MAX_DAYS:  # a timedelta holds at most 999,999,999 days
            raise DefinitionsError(
                f"rfm.recency_days: breakpoints are at most {MAX_DAYS} days, got {recency[-1]}"
            )
        minor = []
        for i, amount in enumerate(monetary):
            scaled = amount.scaleb(minor_exponent)
            if scaled != scaled.to_integral_value():
                raise DefinitionsError(
                    f"rfm.monetary[{i}]: {amount} has more decimals than the base currency"
                )
            minor.append(int(scaled))
        entries = tuple(_entry(item, i) for i, item in enumerate(read_list(raw, "segments", [], "rfm.")))
        cells: list[str] = []
        missing: list[str] = []
        for r in _SCORES:
            for f in _SCORES:
                for m in _SCORES:
                    match = next((e.segment for e in entries if e.covers(r, f, m)), None)
                    if match is None:
                        missing.append(f"R{r}-F{f}-M{m}")
                    cells.append(match or "")
        if missing:
            raise DefinitionsError(
                f"rfm.segments: the map does not cover {len(missing)} of 125 cells: {', '.join(missing)}"
            )
        return cls(recency, frequency, monetary, tuple(minor), entries, tuple(cells))


def _four(raw: Mapping[str, object], key: str) -> list[object]:
    values = read_list(raw, key, [], "rfm.")
    if len(values) != 4:
        raise DefinitionsError(f"rfm.{key}: expected 4 breakpoints (for scores 1-5), got {len(values)}")
    return values


def _breakpoint_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DefinitionsError(f"{where}: expected an integer, got {value!r}")
    return value


def _range(raw: Mapping[str, object], key: str, where: str) -> tuple[int, int]:
    value = raw.get(key, "1-5")
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str):
        raise DefinitionsError(f'{where}.{key}: expected a score or range like "3-5", got {value!r}')
    low, _, high = text.partition("-")
    try:
        bounds = (int(low), int(high or low))
    except ValueError:
        raise DefinitionsError(
            f'{where}.{key}: expected a score or range like "3-5", got {value!r}'
        ) from None
    if not 1 <= bounds[0] <= bounds[1] <= 5:
        raise DefinitionsError(f"{where}.{key}: range {text!r} must lie within 1-5 and be ascending")
    return bounds


def _entry(item: object, index: int) -> RfmEntry:
    where = f"rfm.segments[{index}]"
    if not isinstance(item, Mapping):
        raise DefinitionsError(f"{where}: expected a mapping with segment, r, f, m")
    unknown = set(item) - {"segment", "r", "f", "m"}
    if unknown:
        raise DefinitionsError(f"{where}: unknown keys {sorted(map(str, unknown))}")
    segment = read_str(item, "segment", "", f"{where}.")
    if segment == NO_PURCHASE:
        raise DefinitionsError(f"{where}: {NO_PURCHASE!r} is reserved for customers without purchase")
    return RfmEntry(segment, _range(item, "r", where), _range(item, "f", where), _range(item, "m", where))


def recency_score(cfg: RfmConfig, last_purchase_at: datetime, now: datetime) -> int:
    """R at `now`: kept fresh at every clock move, since it changes with time inside a segment too."""
    return 5 - bisect_right(cfg.recency_days, (now - last_purchase_at).days)


def scores(s: CustomerState, cfg: RfmConfig, now: datetime) -> tuple[int, int, int] | None:
    """(R, F, M) at `now`, or None without purchase."""
    last = s.last_purchase_at
    if last is None:
        return None
    r = recency_score(cfg, last, now)
    f = 1 + bisect_right(cfg.frequency_orders, s.orders)
    m = 1 + bisect_right(cfg.monetary_minor, max(0, s.gross_minor - s.refunded_minor))
    return r, f, m


def cell(cfg: RfmConfig, rfm: tuple[int, int, int] | None) -> str:
    """The segment of a score triple (one tuple lookup: the map was expanded at load time)."""
    if rfm is None:
        return NO_PURCHASE
    r, f, m = rfm
    return cfg.cells[(r - 1) * 25 + (f - 1) * 5 + m - 1]


def classify(s: CustomerState, cfg: RfmConfig, now: datetime) -> str:
    return cell(cfg, scores(s, cfg, now))


def next_change(s: CustomerState, cfg: RfmConfig, now: datetime, current: str) -> datetime | None:
    """First recency-breakpoint instant after `now` at which the segment changes.

    At last purchase + the i-th breakpoint (0-based) R becomes 4 - i while F and M stay, so each
    candidate costs one table lookup.
    """
    last = s.last_purchase_at
    if last is None:
        return None
    f = 1 + bisect_right(cfg.frequency_orders, s.orders)
    m = 1 + bisect_right(cfg.monetary_minor, max(0, s.gross_minor - s.refunded_minor))
    cells, fm = cfg.cells, (f - 1) * 5 + m - 1
    return _next_breakpoint(cfg, cells, fm, last, now, current)


def _next_breakpoint(
    cfg: RfmConfig, cells: tuple[str, ...], fm: int, last: datetime, now: datetime, current: str
) -> datetime | None:
    """The first breakpoint after `now` whose cell is not `current` (None past datetime.max: never)."""
    try:
        for i, delta in enumerate(cfg.recency_deltas):
            instant = last + delta
            if instant > now and cells[(3 - i) * 25 + fm] != current:
                return instant
    except OverflowError:  # breakpoints ascend: none of the rest is reached either (segmentation/instants)
        pass
    return None


def assess(
    s: CustomerState, cfg: RfmConfig, now: datetime
) -> tuple[tuple[int, int, int] | None, str, datetime | None]:
    """Scores, segment and next change in one pass (the hot path of every purchase and refund)."""
    last = s.last_purchase_at
    if last is None:
        return None, NO_PURCHASE, None
    r = recency_score(cfg, last, now)
    f = 1 + bisect_right(cfg.frequency_orders, s.orders)
    m = 1 + bisect_right(cfg.monetary_minor, max(0, s.gross_minor - s.refunded_minor))
    cells, fm = cfg.cells, (f - 1) * 5 + m - 1
    segment = cells[(r - 1) * 25 + fm]
    return (r, f, m), segment, _next_breakpoint(cfg, cells, fm, last, now, segment)


def explain(s: CustomerState, cfg: RfmConfig, now: datetime, segment: str) -> dict[str, str]:
    rfm = scores(s, cfg, now)
    if rfm is None or s.last_purchase_at is None:
        return {"rule": "no purchase yet"}
    r, f, m = rfm
    return {
        "rule": cfg.cell_rules[(r - 1) * 25 + (f - 1) * 5 + m - 1],
        "r": str(r),
        "f": str(f),
        "m": str(m),
        "days_since_last_purchase": str((now - s.last_purchase_at).days),
        "orders": str(s.orders),
        "monetary_minor": str(max(0, s.gross_minor - s.refunded_minor)),
    }
