"""Definitions: the versioned segmentation configuration (thresholds, breakpoints, maps, audiences).

State and transitions are a function of (event log, definitions version) only, so everything that
decides a segment lives here, including the fixed currency conversion rates. Definitions are frozen
and hashable and validated entirely at load time (`DefinitionsError` names the key or rule at fault):
`apply` never meets a broken configuration. The default ships as `segmentation/definitions.yaml`,
where every field is commented.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from segmentation.audiences import FIELDS as AUDIENCE_FIELDS
from segmentation.audiences import check_segment_names, lower_case_regions, window_filters
from segmentation.category import OTHER, CategoryConfig
from segmentation.channel import ChannelConfig
from segmentation.clv import NO_PURCHASE as CLV_NO_PURCHASE
from segmentation.clv import ClvConfig
from segmentation.clv_fields import FIELDS as CLV_FIELDS
from segmentation.config_reading import (
    DefinitionsError,
    read_decimal,
    read_instant,
    read_int,
    read_section,
    read_str,
)
from segmentation.currencies import CURRENCY_EXPONENT
from segmentation.demographics import AgeBandConfig, RegionConfig
from segmentation.email_appetence import SEGMENTS as EMAIL_SEGMENTS
from segmentation.email_appetence import EmailConfig
from segmentation.kpi_definitions import KpiConfig
from segmentation.lifecycle import SEGMENTS as LIFECYCLE_SEGMENTS
from segmentation.lifecycle import LifecycleConfig
from segmentation.promotion import SEGMENTS as PROMOTION_SEGMENTS
from segmentation.promotion import PromotionConfig
from segmentation.rfm import RfmConfig
from segmentation.rule_windows import SOURCE as WINDOW_SOURCE
from segmentation.rules import Rule, RuleError, parse_rule
from segmentation.safe_yaml import MAX_SIZE, load_bounded, one_line
from segmentation.satisfaction import SEGMENTS as SATISFACTION_SEGMENTS
from segmentation.satisfaction import SatisfactionConfig
from segmentation.value import ValueConfig

__all__ = ["Definitions", "DefinitionsError"]

_TOP_KEYS = frozenset(
    {
        "version", "currency", "currency_rates", "recent_event_ids", "max_amount", "earliest_event_time",
        "lifecycle", "rfm", "value", "email", "channel", "age_band", "region", "satisfaction", "audiences",
        "category", "promotion", "recent_orders",
        "clv", "kpis",
    }
)  # fmt: skip
_SECTION_KEYS = {
    "lifecycle": {"new_for_days", "at_risk_after_days", "lost_after_days", "reactivated_for_days"},
    "rfm": {"recency_days", "frequency_orders", "monetary", "segments"},
    "value": {"tiers"},
    "email": {"half_life_days", "click_weight", "engaged_at", "passive_at"},
    "channel": {"tie_order"},
    "age_band": {"bands"},
    "region": {"groups"},
    "satisfaction": {"detractor_max", "passive_max"},
    "category": {"categories", "sku_prefixes", "dominant_share"},
    "promotion": {"promo_driven_share", "full_price_max_share"},
}
_AUDIENCE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class Definitions:
    """One version of the segmentation configuration (`default`, `from_yaml` or `from_mapping`)."""

    version: str
    currency: str
    currency_rates: tuple[tuple[str, Decimal], ...]
    recent_event_ids: int
    max_amount: Decimal  # base currency, major units (see `limits`)
    earliest_event_time: datetime  # aware, UTC
    lifecycle: LifecycleConfig
    rfm: RfmConfig
    value: ValueConfig
    email: EmailConfig
    channel: ChannelConfig
    age_band: AgeBandConfig
    region: RegionConfig
    satisfaction: SatisfactionConfig
    audiences: tuple[Rule, ...]
    category: CategoryConfig
    promotion: PromotionConfig
    recent_orders: int  # orders kept per customer for windowed rules
    clv: ClvConfig | None  # only once `calibrate --model clv` fitted the model (segmentation/clv.py)
    kpis: KpiConfig = field(default_factory=KpiConfig)  # checked against the grids in `from_mapping`
    warnings: tuple[str, ...] = field(default=(), compare=False)
    rates: Mapping[str, Decimal] = field(init=False, compare=False, repr=False)
    minor_exponent: int = field(init=False, compare=False, repr=False)
    scale: Decimal = field(init=False, compare=False, repr=False)
    max_amount_minor: int = field(init=False, compare=False, repr=False)
    memo: dict[str, Any] = field(init=False, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rates", dict(self.currency_rates))
        object.__setattr__(self, "minor_exponent", CURRENCY_EXPONENT[self.currency])
        object.__setattr__(self, "scale", Decimal(1).scaleb(-CURRENCY_EXPONENT[self.currency]))
        object.__setattr__(self, "max_amount_minor", int(self.max_amount.scaleb(self.minor_exponent)))
        object.__setattr__(self, "memo", {})  # per-instance cache of derived plans (see evolution)

    @property
    def grid_segments(self) -> dict[str, tuple[str, ...]]:
        """Every grid and its possible segments, in the canonical grid order used for transitions."""
        grids: dict[str, tuple[str, ...]] = {
            "lifecycle": LIFECYCLE_SEGMENTS,
            "rfm": self.rfm.segments,
            "value": self.value.segments,
            "email": EMAIL_SEGMENTS,
            "channel": self.channel.segments,
            "age_band": self.age_band.all_segments,
            "region": self.region.segments,
            "satisfaction": SATISFACTION_SEGMENTS,
            "category": self.category.segments,
            "promotion": PROMOTION_SEGMENTS,
        }
        if self.clv is not None:
            grids["clv"] = (*self.clv.segments, CLV_NO_PURCHASE)
        for rule in self.audiences:
            grids[f"audience:{rule.name}"] = ("member", "not_member")
        return grids

    @classmethod
    @cache
    def default(cls) -> Definitions:
        """The shipped default definitions (read lazily from package data, once per process)."""
        text = resources.files("segmentation").joinpath("definitions.yaml").read_text(encoding="utf-8")
        return cls.from_mapping(_load_yaml(text, "segmentation/definitions.yaml"))

    @classmethod
    def from_yaml(cls, path: str | Path) -> Definitions:
        """Load definitions from a YAML file; every failure is a one-line `DefinitionsError`."""
        try:
            with Path(path).open("rb") as handle:
                data = handle.read(MAX_SIZE + 1)  # never read more of a huge file than the limit
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DefinitionsError(one_line(f"{path}: cannot read: {exc}")) from None
        document = _load_yaml(text, str(path))
        try:
            return cls.from_mapping(document)
        except DefinitionsError as exc:
            raise DefinitionsError(one_line(f"{path}: {exc}")) from None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> Definitions:
        """Validate and build definitions from a plain mapping (the parsed YAML document)."""
        if not isinstance(raw, Mapping):
            raise DefinitionsError(
                f"definitions: expected a mapping at the top level, got {type(raw).__name__}"
            )
        unknown = set(raw) - _TOP_KEYS
        if unknown:
            raise DefinitionsError(f"definitions: unknown keys {sorted(map(str, unknown))}")
        for name, allowed in _SECTION_KEYS.items():
            extra = set(read_section(raw, name)) - allowed
            if extra:
                raise DefinitionsError(f"{name}: unknown keys {sorted(map(str, extra))}")
        version = read_str(raw, "version", "")
        currency = read_str(raw, "currency", "EUR")
        if currency not in CURRENCY_EXPONENT:
            raise DefinitionsError(f"currency: {currency!r} is not an ISO 4217 code")
        exponent = CURRENCY_EXPONENT[currency]
        recent = read_int(raw, "recent_event_ids", 64)
        if not 1 <= recent <= 10_000:
            raise DefinitionsError(f"recent_event_ids: must be between 1 and 10000, got {recent}")
        orders_kept = read_int(raw, "recent_orders", 12)
        if not 0 <= orders_kept <= 200:
            raise DefinitionsError(f"recent_orders: must be between 0 and 200, got {orders_kept}")
        category = CategoryConfig.from_mapping(read_section(raw, "category"))
        definitions = cls(
            version=version,
            currency=currency,
            currency_rates=_rates(read_section(raw, "currency_rates"), currency),
            recent_event_ids=recent,
            max_amount=_max_amount(raw.get("max_amount", "1000000000"), exponent),
            earliest_event_time=read_instant(
                raw.get("earliest_event_time", "1970-01-01T00:00:00Z"), "earliest_event_time"
            ),
            lifecycle=LifecycleConfig.from_mapping(read_section(raw, "lifecycle")),
            rfm=RfmConfig.from_mapping(read_section(raw, "rfm"), exponent),
            value=ValueConfig.from_mapping(read_section(raw, "value"), exponent),
            email=EmailConfig.from_mapping(read_section(raw, "email")),
            channel=ChannelConfig.from_mapping(read_section(raw, "channel")),
            age_band=AgeBandConfig.from_mapping(read_section(raw, "age_band")),
            region=RegionConfig.from_mapping(read_section(raw, "region")),
            satisfaction=SatisfactionConfig.from_mapping(read_section(raw, "satisfaction")),
            audiences=_audiences(read_section(raw, "audiences"), category),
            category=category,
            promotion=PromotionConfig.from_mapping(read_section(raw, "promotion")),
            recent_orders=orders_kept,
            clv=ClvConfig.from_mapping(read_section(raw, "clv")) if raw.get("clv") is not None else None,
        )
        windowed = [rule.name for rule in definitions.audiences if WINDOW_SOURCE in rule.fields]
        if windowed and not orders_kept:
            raise DefinitionsError(
                f"recent_orders: 0 keeps no recent orders, but audiences {windowed} use windowed facts"
            )
        if definitions.clv is None:
            for rule in definitions.audiences:
                needs = sorted(rule.fields & {"clv", *CLV_FIELDS})
                if needs:
                    raise DefinitionsError(
                        f"audiences.{rule.name}: {', '.join(needs)} need a clv section"
                        " (segstream calibrate --model clv)"
                    )
        for grid, segments in definitions.grid_segments.items():
            for segment in segments:
                _check_segment_name(grid, segment)
        check_segment_names(definitions.audiences, definitions.grid_segments)
        kpis = KpiConfig.from_mapping(read_section(raw, "kpis"), definitions.grid_segments)
        object.__setattr__(definitions, "kpis", kpis)
        warnings = tuple(
            f"grid {grid!r} has {len(segments)} segments (a grid should have 3 to 10)"
            for grid, segments in definitions.grid_segments.items()
            if not grid.startswith("audience:") and not 3 <= len(segments) <= 10
        )
        object.__setattr__(definitions, "warnings", warnings)
        return definitions


def _check_segment_name(grid: str, segment: str) -> None:
    """The read side's counters name a move `<from>><to>` ('-': no segment) and a crossing's cell
    `<a>|<b>`: a segment name holding `>` or `|`, or named `-`, would be read back as other segments."""
    if segment == "-" or ">" in segment or "|" in segment:
        raise DefinitionsError(
            f"{grid}: segment name {segment!r} is not allowed: names may not contain '>' or '|' and may not"
            " be '-' (the read side's counters name a move '<from>><to>', '-' for no segment, and a"
            " crossing's cell '<a>|<b>'); e.g. 'over_500' for '>500'"
        )


def _load_yaml(text: str, origin: str) -> Mapping[str, object]:
    document = load_bounded(text, origin)
    if not isinstance(document, Mapping):
        raise DefinitionsError(f"{origin}: expected a mapping at the top level")
    return document


def _rates(raw: Mapping[str, object], base: str) -> tuple[tuple[str, Decimal], ...]:
    rates = {base: Decimal(1)}
    for code, value in raw.items():
        if code not in CURRENCY_EXPONENT:
            raise DefinitionsError(f"currency_rates.{code}: not an ISO 4217 currency code")
        rate = read_decimal(value, f"currency_rates.{code}")
        if rate <= 0 or (code == base and rate != 1):
            raise DefinitionsError(
                f"currency_rates.{code}: must be > 0 (and 1 for the base currency), got {rate}"
            )
        rates[code] = rate
    return tuple(sorted(rates.items()))


def _max_amount(value: object, exponent: int) -> Decimal:
    amount = read_decimal(value, "max_amount")
    if amount <= 0 or amount.scaleb(exponent) != amount.scaleb(exponent).to_integral_value():
        raise DefinitionsError(f"max_amount: must be > 0 and a whole number of minor units, got {amount}")
    return amount


def _audiences(raw: Mapping[str, object], category: CategoryConfig) -> tuple[Rule, ...]:
    rules = []
    for name, text in raw.items():
        if not isinstance(name, str) or not _AUDIENCE_NAME.fullmatch(name):
            raise DefinitionsError(
                f"audiences.{name}: audience names are lower-case identifiers (a-z, 0-9, _)"
            )
        if not isinstance(text, str):
            raise DefinitionsError(f"audiences.{name}: expected the rule as a string, got {text!r}")
        try:
            rule = parse_rule(name, text, AUDIENCE_FIELDS, window_filters((*category.categories, OTHER)))
        except RuleError as exc:
            raise DefinitionsError(f"audiences.{name}: {exc}") from None
        if lower := lower_case_regions(rule):
            raise DefinitionsError(
                f"audiences.{name}: region codes are compared in upper case, as the region grid reads"
                f" them: write {lower[0].upper()!r}, not {lower[0]!r}"
            )
        rules.append(rule)
    return tuple(rules)
