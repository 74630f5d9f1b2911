"""Value grid: tiers of net monetary (gross purchases minus refunds, in the base currency).

Tiers are `{segment, from}` lines with ascending inclusive lower bounds, the first starting at 0, so
every customer (including one without purchase: M = 0) is in exactly one tier. Value does not move
with time alone: it is a lifetime value, not a rolling window.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from segmentation.config_reading import DefinitionsError, read_decimal, read_list, read_str
from segmentation.state import CustomerState

__all__ = ["ValueConfig", "classify", "explain"]

GRID = "value"


@dataclass(frozen=True, slots=True)
class ValueConfig:
    segments: tuple[str, ...]
    lower_bounds: tuple[Decimal, ...]
    lower_minor: tuple[int, ...]
    rules: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        """Each tier's rule text, once: `explain` runs for every value transition."""
        rules: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            upper = self.lower_bounds[index + 1] if index + 1 < len(self.segments) else None
            below = "" if upper is None else f" and monetary < {upper}"
            rules.setdefault(segment, f"monetary >= {self.lower_bounds[index]}{below}")  # first tier wins
        object.__setattr__(self, "rules", rules)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object], minor_exponent: int) -> ValueConfig:
        tiers = read_list(raw, "tiers", [], "value.")
        if not tiers:
            raise DefinitionsError("value.tiers: at least one tier is required")
        names: list[str] = []
        bounds: list[Decimal] = []
        for i, item in enumerate(tiers):
            where = f"value.tiers[{i}]"
            if not isinstance(item, Mapping):
                raise DefinitionsError(f"{where}: expected a mapping with segment and from")
            names.append(read_str(item, "segment", "", f"{where}."))
            bounds.append(read_decimal(item.get("from"), f"{where}.from"))
        if bounds[0] != 0:
            raise DefinitionsError("value.tiers[0].from: the first tier must start at 0")
        if any(b <= a for a, b in itertools.pairwise(bounds)):
            raise DefinitionsError("value.tiers: 'from' bounds must be strictly ascending")
        if len(set(names)) != len(names):
            raise DefinitionsError("value.tiers: segment names must be unique")
        minor = tuple(
            int((b.scaleb(minor_exponent)).to_integral_value(rounding="ROUND_CEILING")) for b in bounds
        )
        return cls(tuple(names), tuple(bounds), minor)


def classify(s: CustomerState, cfg: ValueConfig) -> str:
    net = max(0, s.gross_minor - s.refunded_minor)
    return cfg.segments[bisect_right(cfg.lower_minor, net) - 1]


def explain(s: CustomerState, cfg: ValueConfig, segment: str) -> dict[str, str]:
    return {"rule": cfg.rules[segment], "monetary_minor": str(max(0, s.gross_minor - s.refunded_minor))}
