"""Socio-demographic grids from declared data: age band and region group.

Age is `event-time year - declared birth_year` (the age reached during the current year, UTC), so the
band changes only on 1 January 00:00 UTC, which makes the change instant exact and the same on every
replay. Bands are `{segment, below}` lines with ascending upper bounds; the last has no bound.
`unknown` when no birth year was declared. Region: declared region codes are mapped to configured
groups; a declared code in no group is `other`, no declaration is `unknown`.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from segmentation.config_reading import DefinitionsError, read_list, read_section, read_str
from segmentation.state import CustomerState

__all__ = ["AgeBandConfig", "RegionConfig", "age_band", "age_band_next_change", "region_group"]

AGE_GRID = "age_band"
# Ages in years: a band bound far beyond a lifetime put the band's next change (1 January of birth year +
# bound) past year 9999, and every birth-year declaration failed inside `apply`
MAX_AGE = 200
REGION_GRID = "region"


@dataclass(frozen=True, slots=True)
class AgeBandConfig:
    segments: tuple[str, ...]
    below: tuple[int, ...]

    @property
    def all_segments(self) -> tuple[str, ...]:
        return (*self.segments, "unknown")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> AgeBandConfig:
        bands = read_list(raw, "bands", [], "age_band.")
        names: list[str] = []
        bounds: list[int] = []
        for i, item in enumerate(bands):
            where = f"age_band.bands[{i}]"
            if not isinstance(item, Mapping):
                raise DefinitionsError(f"{where}: expected a mapping with segment and below")
            names.append(read_str(item, "segment", "", f"{where}."))
            last = i == len(bands) - 1
            bound = item.get("below")
            if last:
                if bound is not None:
                    raise DefinitionsError(f"{where}: the last band is open-ended and takes no 'below'")
            elif isinstance(bound, bool) or not isinstance(bound, int) or bound > MAX_AGE:
                raise DefinitionsError(
                    f"{where}.below: expected an integer age, at most {MAX_AGE}, got {bound!r}"
                )
            else:
                bounds.append(bound)
        if len(names) < 2:
            raise DefinitionsError("age_band.bands: at least two bands are required")
        if any(b <= a for a, b in itertools.pairwise(bounds)):
            raise DefinitionsError("age_band.bands: 'below' bounds must be strictly ascending")
        if len(set(names)) != len(names) or "unknown" in names:
            raise DefinitionsError("age_band.bands: segment names must be unique and not 'unknown'")
        return cls(tuple(names), tuple(bounds))


@dataclass(frozen=True, slots=True)
class RegionConfig:
    groups: tuple[tuple[str, tuple[str, ...]], ...]
    lookup: Mapping[str, str] = field(compare=False, hash=False)

    @property
    def segments(self) -> tuple[str, ...]:
        return (*(name for name, _ in self.groups), "other", "unknown")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> RegionConfig:
        section = read_section(raw, "groups", "region.")
        groups: list[tuple[str, tuple[str, ...]]] = []
        lookup: dict[str, str] = {}
        # keys as YAML gave them (`on:` is a boolean): compiled, a `str` key is type-checked on unpacking
        for name, codes in cast(Mapping[object, object], section).items():
            if not isinstance(name, str) or not name:  # `on:` is a boolean; "" reads back as no segment
                raise DefinitionsError(
                    f"region.groups.{name}: group names are non-empty strings (quote a name YAML reads as a"
                    " boolean, number or null)"
                )
            if (
                name in ("other", "unknown")
                or not isinstance(codes, list)
                or not all(isinstance(c, str) for c in codes)
            ):
                raise DefinitionsError(
                    f"region.groups.{name}: expected a list of region codes as strings (quote NO, ON...:"
                    " YAML reads them as booleans), and a name other than other/unknown"
                )
            for code in codes:
                key = str(code).upper()
                if key in lookup:
                    raise DefinitionsError(
                        f"region.groups.{name}: code {code!r} is already in group {lookup[key]!r}"
                    )
                lookup[key] = name
            groups.append((name, tuple(str(code).upper() for code in codes)))
        return cls(tuple(groups), lookup)


def age(s: CustomerState, now: datetime) -> int | None:
    return None if s.birth_year is None else now.year - s.birth_year


def age_band(s: CustomerState, cfg: AgeBandConfig, now: datetime) -> str:
    years = age(s, now)
    return "unknown" if years is None else cfg.segments[bisect_right(cfg.below, years)]


def age_band_next_change(s: CustomerState, cfg: AgeBandConfig, now: datetime) -> datetime | None:
    """1 January of the year in which the customer's age reaches the next band bound."""
    years = age(s, now)
    if years is None or s.birth_year is None:
        return None
    index = bisect_right(cfg.below, years)
    if index == len(cfg.below):
        return None
    return datetime(s.birth_year + cfg.below[index], 1, 1, tzinfo=UTC)


def age_band_explain(s: CustomerState, cfg: AgeBandConfig, now: datetime, segment: str) -> dict[str, str]:
    """The band's bounds only: the declared birth year (and the exact age, which gives it away) is personal
    data that must not travel with a transition onto the topic or into the history (docs/privacy.md)."""
    if s.birth_year is None:
        return {"rule": "no birth year declared"}
    index = cfg.segments.index(segment)
    low = f"age >= {cfg.below[index - 1]}" if index > 0 else ""
    high = f"age < {cfg.below[index]}" if index < len(cfg.below) else ""
    return {"rule": " and ".join(part for part in (low, high) if part)}


def region_group(s: CustomerState, cfg: RegionConfig) -> str:
    region = s.region
    if region is None:
        return "unknown"
    return cfg.lookup.get(region.upper(), "other")


def region_explain(s: CustomerState, cfg: RegionConfig, segment: str) -> dict[str, str]:
    """The group only, never the declared region code (personal data, docs/privacy.md)."""
    if s.region is None:
        return {"rule": "no region declared"}
    if segment == "other":
        return {"rule": "declared region in no configured group"}
    return {"rule": f"region in group {segment}"}
