"""Channel grid (relational): the purchase channel the customer uses most.

Counts purchases per channel (refunds do not change them: the customer still chose that channel).
Ties are broken by the configured `tie_order` (default store, web, app, phone: the earlier channel
wins), so the result never depends on event order. `none` without purchase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from segmentation.config_reading import DefinitionsError, read_list
from segmentation.state import CustomerState

__all__ = ["CHANNELS", "ChannelConfig", "classify", "explain"]

GRID = "channel"
CHANNELS = ("web", "store", "app", "phone")
DEFAULT_TIE_ORDER = ("store", "web", "app", "phone")


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    tie_order: tuple[str, ...] = DEFAULT_TIE_ORDER
    tie_positions: tuple[tuple[str, int], ...] = field(init=False, repr=False, compare=False)
    rule: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        positions = tuple((name, CHANNELS.index(name)) for name in self.tie_order if name in CHANNELS)
        object.__setattr__(self, "tie_positions", positions)
        object.__setattr__(self, "rule", f"most purchases; ties broken in order {' > '.join(self.tie_order)}")
        if sorted(self.tie_order) != sorted(CHANNELS):
            raise DefinitionsError(
                f"channel.tie_order: must list each of {', '.join(CHANNELS)} exactly once,"
                f" got {self.tie_order}"
            )

    @property
    def segments(self) -> tuple[str, ...]:
        return (*self.tie_order, "none")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> ChannelConfig:
        order = read_list(raw, "tie_order", list(DEFAULT_TIE_ORDER), "channel.")
        return cls(tuple(str(item) for item in order))


def classify(s: CustomerState, cfg: ChannelConfig) -> str:
    per_channel = (s.channel_web, s.channel_store, s.channel_app, s.channel_phone)  # CHANNELS order
    best, best_count = "none", 0
    for name, index in cfg.tie_positions:
        count = per_channel[index]
        if count > best_count:
            best, best_count = name, count
    return best


def explain(s: CustomerState, cfg: ChannelConfig, segment: str) -> dict[str, str]:
    return {
        "purchases_web": str(s.channel_web),
        "purchases_store": str(s.channel_store),
        "purchases_app": str(s.channel_app),
        "purchases_phone": str(s.channel_phone),
        "rule": "no purchase yet" if segment == "none" else cfg.rule,
    }
