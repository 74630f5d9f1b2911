"""Category grid (what was bought): the category with the most spend, `mixed` when none dominates.

An item's category is its own `category` (lower-cased) when the event gives one, else the longest
`sku_prefixes` entry its sku starts with; a category the definitions do not list, or an item with
neither, counts as `other`, so a customer keeps at most one counter per configured category plus one.
An order's amount (base minor units, what M counts) is split over its categories in proportion to
the line values (quantity x unit_price; by quantity when a price is missing), largest remainder first,
so the category spends of an order add up to its amount exactly. Refunds do not change category spend
(like the channel counts: the customer did choose that category); they reduce the recent order they name.
Segments: each configured category, `other`, `mixed` (the top category's share of spend is below
`dominant_share`), `none` (no order with items). Ties go to the category listed first (`other` last).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from segmentation.config_reading import DefinitionsError, read_decimal, read_list, read_section
from segmentation.state import CategoryTotal, CustomerState

__all__ = ["OTHER", "CategoryConfig", "add_order", "classify", "explain", "split_order"]

GRID = "category"
OTHER = "other"
MIXED = "mixed"
NONE = "none"
RESERVED = frozenset({OTHER, MIXED, NONE})
MAX_CATEGORIES = 7  # + other, mixed, none: a grid has at most 10 segments
MAX_PREFIXES = 1000


@dataclass(frozen=True, slots=True)
class CategoryConfig:
    categories: tuple[str, ...] = ()
    sku_prefixes: tuple[tuple[str, str], ...] = ()  # (prefix, category), longest prefix first
    dominant_share: Decimal = Decimal("0.5")
    rank: Mapping[str, int] = field(init=False, repr=False, compare=False, hash=False)
    known: frozenset[str] = field(init=False, repr=False, compare=False, hash=False)
    rule: str = field(init=False, repr=False, compare=False, hash=False)
    share_ratio: tuple[int, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        names = self.categories
        if not 1 <= len(names) <= MAX_CATEGORIES:
            raise DefinitionsError(
                f"category.categories: list 1 to {MAX_CATEGORIES} categories (with other, mixed and none"
                f" the grid has at most 10 segments), got {len(names)}"
            )
        for name in names:
            if not name.isidentifier() or name != name.lower() or name in RESERVED:
                raise DefinitionsError(
                    f"category.categories: {name!r} must be a lower-case identifier other than"
                    f" {', '.join(sorted(RESERVED))}"
                )
        if len(set(names)) != len(names):
            raise DefinitionsError("category.categories: names must be unique")
        for prefix, target in self.sku_prefixes:
            if target not in names:
                raise DefinitionsError(
                    f"category.sku_prefixes.{prefix}: {target!r} is not one of category.categories"
                )
        if not 0 < self.dominant_share <= 1:
            raise DefinitionsError(
                f"category.dominant_share: must be > 0 and <= 1, got {self.dominant_share}"
            )
        object.__setattr__(self, "rank", {name: n for n, name in enumerate((*names, OTHER))})
        object.__setattr__(self, "known", frozenset(names))
        object.__setattr__(self, "share_ratio", self.dominant_share.as_integer_ratio())
        ties = " > ".join((*names, OTHER))
        object.__setattr__(self, "rule", f"most spend, at least {self.dominant_share} of it; ties: {ties}")

    @property
    def segments(self) -> tuple[str, ...]:
        return (*self.categories, OTHER, MIXED, NONE)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> CategoryConfig:
        names = read_list(
            raw, "categories", ["shoes", "apparel", "accessories", "home", "beauty"], "category."
        )
        prefixes = read_section(raw, "sku_prefixes", "category.")
        if len(prefixes) > MAX_PREFIXES:
            raise DefinitionsError(f"category.sku_prefixes: at most {MAX_PREFIXES} prefixes")
        pairs = []
        for prefix, target in prefixes.items():
            if not isinstance(prefix, str) or not prefix or not isinstance(target, str):
                raise DefinitionsError(
                    f"category.sku_prefixes: expected 'prefix: category' strings, got {prefix!r}: {target!r}"
                )
            pairs.append((prefix, target))
        pairs.sort(key=lambda pair: (-len(pair[0]), pair[0]))
        share = read_decimal(raw.get("dominant_share", "0.5"), "category.dominant_share")
        return cls(tuple(str(name) for name in names), tuple(pairs), share)

    def category_of(self, sku: str, declared: str | None) -> str:
        """The category an item counts in (configured, or `other`)."""
        if declared is not None:
            name = declared.lower()
            return name if name in self.known else OTHER
        for prefix, target in self.sku_prefixes:
            if sku.startswith(prefix):
                return target
        return OTHER


def split_order(items: Sequence[Any], amount_minor: int, cfg: CategoryConfig) -> tuple[tuple[str, int], ...]:
    """The order's amount per category, sorted by name; () for an order without items."""
    if not items:
        return ()
    names = [cfg.category_of(item.sku, item.category) for item in items]
    first = names[0]
    if all(name == first for name in names):  # the common case: one category
        return ((first, amount_minor),)
    weights = _weights(items, names, all(item.unit_price is not None for item in items))
    total = sum(weights.values())
    if total == 0:  # every line priced at zero: split by quantity instead
        weights = _weights(items, names, False)
        total = sum(weights.values())
    floors = {name: amount_minor * weight // total for name, weight in weights.items()}
    left = amount_minor - sum(floors.values())
    remainders = {name: amount_minor * weight % total for name, weight in weights.items()}
    for name in sorted(floors, key=lambda n: (-remainders[n], n))[:left]:  # largest remainder first
        floors[name] += 1
    return tuple(sorted(floors.items()))


def _weights(items: Sequence[Any], names: list[str], priced: bool) -> dict[str, int]:
    """Integer weights: line values in the smallest decimal unit any price uses, or quantities."""
    places = max(-min(0, int(item.unit_price.as_tuple().exponent)) for item in items) if priced else 0
    weights: dict[str, int] = {}
    for item, name in zip(items, names, strict=True):
        weight = item.quantity * int(item.unit_price.scaleb(places)) if priced else item.quantity
        weights[name] = weights.get(name, 0) + weight
    return weights


def add_order(
    totals: tuple[CategoryTotal, ...], split: tuple[tuple[str, int], ...]
) -> tuple[CategoryTotal, ...]:
    """The lifetime counters after one order: +1 order and its spend for each of its categories."""
    merged = {total.name: total for total in totals}
    for name, spend in split:
        old = merged.get(name)
        merged[name] = (
            CategoryTotal(name, 1, spend)
            if old is None
            else CategoryTotal(name, old.orders + 1, old.spend_minor + spend)
        )
    return tuple(merged[name] for name in sorted(merged))


def _ranked(s: CustomerState, cfg: CategoryConfig) -> tuple[dict[str, tuple[int, int]], int, int]:
    """(spend, orders) per category (a name the definitions no longer list counts as other), totals."""
    per: dict[str, tuple[int, int]] = {}
    spend_total = orders_total = 0
    for name, orders, spend in s.categories:
        key = name if name in cfg.rank else OTHER
        was_spend, was_orders = per.get(key, (0, 0))
        per[key] = (was_spend + spend, was_orders + orders)
        spend_total += spend
        orders_total += orders
    return per, spend_total, orders_total


def classify(s: CustomerState, cfg: CategoryConfig) -> str:
    if not s.categories:
        return NONE
    per, spend_total, orders_total = _ranked(s, cfg)
    by_spend = spend_total > 0  # all spend zero (free items): rank by orders instead
    rank = cfg.rank
    top = min(per, key=lambda n: (-per[n][0 if by_spend else 1], rank[n]))
    top_value, total = (per[top][0], spend_total) if by_spend else (per[top][1], orders_total)
    numerator, denominator = cfg.share_ratio
    return top if top_value * denominator >= numerator * total else MIXED


def explain(s: CustomerState, cfg: CategoryConfig, segment: str) -> dict[str, str]:
    if segment == NONE:
        return {"rule": "no order with items yet"}
    per, spend_total, _ = _ranked(s, cfg)
    why = {
        "rule": f"no category has {cfg.dominant_share} of spend" if segment == MIXED else cfg.rule,
        "spend_minor_total": str(spend_total),
    }
    for name in sorted(per):
        why[f"spend_minor:{name}"] = str(per[name][0])
        why[f"orders:{name}"] = str(per[name][1])
    return why
