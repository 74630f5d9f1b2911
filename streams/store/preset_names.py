"""The grids and segments of the default definitions, numbered once for every coded store field.

The coded history (`history_format`), the KPI marker (`kpi_ops`) and the day counter names (`day_names`)
write a name of this table as its index, and any other name as itself: whatever definitions are in use,
nothing depends on them, and the default ones cost a byte or two a name.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PRESET"]

# Frozen: the coded history (its VERSION), the KPI marker (kpi_ops.VERSION) and the day counter names
# (day_names, weeks.FORMAT) are stored with these indexes; a change needs new versions of all three.
PRESET: Final[dict[str, tuple[str, ...]]] = {
    "lifecycle": ("prospect", "new", "active", "at_risk", "lost", "reactivated"),
    "rfm": (
        "champions", "loyal", "need_attention", "potential_loyalist", "new", "promising", "about_to_sleep",
        "cant_lose_them", "at_risk", "lost", "hibernating", "no_purchase",
    ),
    "value": ("none", "low", "medium", "high", "top"),
    "email": ("engaged", "passive", "unresponsive", "unsubscribed", "no_email"),
    "channel": ("store", "web", "app", "phone", "none"),
    "age_band": ("under_25", "age_25_34", "age_35_44", "age_45_54", "age_55_64", "age_65_plus", "unknown"),
    "region": ("north", "west", "south", "east", "other", "unknown"),
    "satisfaction": ("detractor", "passive", "promoter", "unknown"),
    "category": ("shoes", "apparel", "accessories", "home", "beauty", "other", "mixed", "none"),
    "promotion": ("promo_driven", "occasional", "full_price", "no_purchase"),
    "clv": (),
    "audience:vip_recent": ("member", "not_member"),
    "audience:win_back": ("member", "not_member"),
    "audience:unhappy_recent_buyers": ("member", "not_member"),
}  # fmt: skip
