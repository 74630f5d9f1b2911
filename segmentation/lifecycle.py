"""Lifecycle grid: where the customer stands in the buying relationship, moved by purchases and by time.

prospect (seen, never bought) -> new (first purchase less than `new_for_days` ago) -> active ->
at_risk (no purchase for `at_risk_after_days`) -> lost (no purchase for `lost_after_days`);
a purchase made while at_risk or lost makes the customer `reactivated` for `reactivated_for_days`
after it, then active again. The stage is a pure function of (first purchase, last purchase,
reactivation purchase, now); the moves to at_risk and lost happen when *time passes*, so
`next_change` gives the exact instant (purchase time + threshold) at which the stage changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from segmentation.config_reading import MAX_DAYS, DefinitionsError, read_int
from segmentation.instants import after, iso
from segmentation.state import CustomerState

__all__ = ["SEGMENTS", "LifecycleConfig", "classify", "explain", "next_change"]

GRID = "lifecycle"
SEGMENTS = ("prospect", "new", "active", "at_risk", "lost", "reactivated")
LAPSED = frozenset({"at_risk", "lost"})


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    """Thresholds in days; validated so that the stages follow each other in the documented order."""

    new_for_days: int = 30
    at_risk_after_days: int = 90
    lost_after_days: int = 180
    reactivated_for_days: int = 30
    new_for: timedelta = field(init=False, repr=False, compare=False)
    at_risk_after: timedelta = field(init=False, repr=False, compare=False)
    lost_after: timedelta = field(init=False, repr=False, compare=False)
    reactivated_for: timedelta = field(init=False, repr=False, compare=False)
    rules: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not 0 < self.new_for_days < self.at_risk_after_days < self.lost_after_days <= MAX_DAYS:
            raise DefinitionsError(
                "lifecycle: thresholds must satisfy 0 < new_for_days < at_risk_after_days < lost_after_days,"
                f" at most {MAX_DAYS} days, got {self.new_for_days}, {self.at_risk_after_days},"
                f" {self.lost_after_days}"
            )
        if not 0 < self.reactivated_for_days < self.at_risk_after_days:
            raise DefinitionsError(
                "lifecycle: reactivated_for_days must be > 0 and < at_risk_after_days,"
                f" got {self.reactivated_for_days}"
            )
        for name in ("new_for", "at_risk_after", "lost_after", "reactivated_for"):
            object.__setattr__(self, name, timedelta(days=getattr(self, f"{name}_days")))
        rules = {
            "lost": f"days_since_last_purchase >= {self.lost_after_days}",
            "at_risk": f"{self.at_risk_after_days} <= days_since_last_purchase < {self.lost_after_days}",
            "reactivated": f"days_since_reactivation < {self.reactivated_for_days}",
            "new": f"days_since_first_purchase < {self.new_for_days}",
            "active": f"days_since_last_purchase < {self.at_risk_after_days}",
        }
        object.__setattr__(self, "rules", rules)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> LifecycleConfig:
        w = "lifecycle."
        return cls(
            new_for_days=read_int(raw, "new_for_days", 30, w),
            at_risk_after_days=read_int(raw, "at_risk_after_days", 90, w),
            lost_after_days=read_int(raw, "lost_after_days", 180, w),
            reactivated_for_days=read_int(raw, "reactivated_for_days", 30, w),
        )


def classify(s: CustomerState, cfg: LifecycleConfig, now: datetime) -> str:
    """The stage at `now`; lapse (at_risk/lost) wins over the reactivated and new windows."""
    last = s.last_purchase_at
    if last is None or s.first_purchase_at is None:
        return "prospect"
    idle = now - last
    if idle >= cfg.lost_after:
        return "lost"
    if idle >= cfg.at_risk_after:
        return "at_risk"
    reactivated = s.reactivated_at
    if reactivated is not None and now - reactivated < cfg.reactivated_for:
        return "reactivated"
    if now - s.first_purchase_at < cfg.new_for:
        return "new"
    return "active"


def next_change(s: CustomerState, cfg: LifecycleConfig, now: datetime, current: str) -> datetime | None:
    """The instant the `current` stage (the stage at `now`) ends with no new event, if it does.

    Each stage has exactly one end by time: new ends at first purchase + new window, reactivated at
    reactivation + its window, active and at_risk at last purchase + the at-risk / lost thresholds;
    the threshold ordering checked at load time guarantees that the stage after that instant differs
    (the property tests check `advance(s, next_due(s))` always yields a transition).
    """
    last, first = s.last_purchase_at, s.first_purchase_at
    if last is None or first is None:
        return None
    if current == "new":
        return after(first, cfg.new_for)
    if current == "reactivated":
        assert s.reactivated_at is not None
        return after(s.reactivated_at, cfg.reactivated_for)
    if current == "active":
        return after(last, cfg.at_risk_after)
    return after(last, cfg.lost_after) if current == "at_risk" else None


def explain(s: CustomerState, cfg: LifecycleConfig, now: datetime, segment: str) -> dict[str, str]:
    """The rule and the values that put the customer in `segment` at `now` (for `Transition.why`)."""
    last, first = s.last_purchase_at, s.first_purchase_at
    if last is None or first is None:
        return {"rule": "no purchase yet"}
    why = {
        "days_since_last_purchase": str((now - last).days),
        "last_purchase_at": iso(last),
        "first_purchase_at": iso(first),
    }
    if segment in ("new", "active"):  # active also when `new` just ended: the rule it left names this
        why["days_since_first_purchase"] = str((now - first).days)
    why["rule"] = cfg.rules[segment]
    if s.reactivated_at is not None:
        why["reactivated_at"] = iso(s.reactivated_at)
        why["days_since_reactivation"] = str((now - s.reactivated_at).days)
    return why
