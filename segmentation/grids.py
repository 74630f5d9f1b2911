"""The grid registry: for each exclusive grid, how to classify, explain and foresee it.

Canonical grid order (also the order of transitions inside one outcome): lifecycle, rfm, value,
email, channel, age_band, region, satisfaction, category, promotion, clv, then the audiences in name order.
Only lifecycle, rfm, email, age_band and clv (and audiences with `within` or windowed facts) change with time
alone. The clv grid exists only with a `clv:` definitions section: without it its segment is None throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from segmentation import (
    category,
    channel,
    clv,
    demographics,
    email_appetence,
    lifecycle,
    promotion,
    rfm,
    satisfaction,
    value,
)
from segmentation.definitions import Definitions
from segmentation.state import CustomerState

__all__ = ["ASSESS", "CLASSIFY", "EXPLAIN", "GRID_ORDER", "NEXT_CHANGE", "TIME_GRIDS"]

GRID_ORDER = (
    "lifecycle", "rfm", "value", "email", "channel", "age_band", "region", "satisfaction",
    "category", "promotion", "clv",
)  # fmt: skip
TIME_GRIDS = ("lifecycle", "rfm", "email", "age_band", "clv")

Classifier = Callable[[CustomerState, Definitions, datetime], str | None]  # None: grid not defined
Foresight = Callable[[CustomerState, Definitions, datetime, str], datetime | None]
Explainer = Callable[[CustomerState, Definitions, datetime, str], dict[str, str]]
Assessor = Callable[[CustomerState, Definitions, datetime], tuple[str | None, datetime | None]]

CLASSIFY: Mapping[str, Classifier] = {
    "lifecycle": lambda s, d, now: lifecycle.classify(s, d.lifecycle, now),
    "rfm": lambda s, d, now: rfm.classify(s, d.rfm, now),
    "value": lambda s, d, now: value.classify(s, d.value),
    "email": lambda s, d, now: email_appetence.classify(s, d.email, now),
    "channel": lambda s, d, now: channel.classify(s, d.channel),
    "age_band": lambda s, d, now: demographics.age_band(s, d.age_band, now),
    "region": lambda s, d, now: demographics.region_group(s, d.region),
    "satisfaction": lambda s, d, now: satisfaction.classify(s, d.satisfaction),
    "category": lambda s, d, now: category.classify(s, d.category),
    "promotion": lambda s, d, now: promotion.classify(s, d.promotion),
    "clv": lambda s, d, now: clv.assess(s, d.clv, now, d.scale)[0],
}

NEXT_CHANGE: Mapping[str, Foresight] = {
    "lifecycle": lambda s, d, now, seg: lifecycle.next_change(s, d.lifecycle, now, seg),
    "rfm": lambda s, d, now, seg: rfm.next_change(s, d.rfm, now, seg),
    "email": lambda s, d, now, seg: email_appetence.next_change(s, d.email, now, seg),
    "age_band": lambda s, d, now, seg: demographics.age_band_next_change(s, d.age_band, now),
    "clv": lambda s, d, now, seg: clv.assess(s, d.clv, now, d.scale)[1],
}

EXPLAIN: Mapping[str, Explainer] = {
    "lifecycle": lambda s, d, now, seg: lifecycle.explain(s, d.lifecycle, now, seg),
    "rfm": lambda s, d, now, seg: rfm.explain(s, d.rfm, now, seg),
    "value": lambda s, d, now, seg: value.explain(s, d.value, seg),
    "email": lambda s, d, now, seg: email_appetence.explain(s, d.email, now, seg),
    "channel": lambda s, d, now, seg: channel.explain(s, d.channel, seg),
    "age_band": lambda s, d, now, seg: demographics.age_band_explain(s, d.age_band, now, seg),
    "region": lambda s, d, now, seg: demographics.region_explain(s, d.region, seg),
    "satisfaction": lambda s, d, now, seg: satisfaction.explain(s, d.satisfaction, seg),
    "category": lambda s, d, now, seg: category.explain(s, d.category, seg),
    "promotion": lambda s, d, now, seg: promotion.explain(s, d.promotion, seg),
    "clv": lambda s, d, now, seg: clv.explain(s, d.clv, now, seg, d.scale),
}


def _lifecycle(s: CustomerState, d: Definitions, now: datetime) -> tuple[str, datetime | None]:
    segment = lifecycle.classify(s, d.lifecycle, now)
    return segment, lifecycle.next_change(s, d.lifecycle, now, segment)


def _age_band(s: CustomerState, d: Definitions, now: datetime) -> tuple[str, datetime | None]:
    return demographics.age_band(s, d.age_band, now), demographics.age_band_next_change(s, d.age_band, now)


def _rfm(s: CustomerState, d: Definitions, now: datetime) -> tuple[str, datetime | None]:
    _, segment, due = rfm.assess(s, d.rfm, now)
    return segment, due


# CLASSIFY and NEXT_CHANGE in one call per grid (None: no change by time alone), for the hot path of
# `reevaluation`, which pays one call per grid instead of two, and one pass where a module has `assess`.
ASSESS: Mapping[str, Assessor] = {
    "lifecycle": _lifecycle,
    "rfm": _rfm,
    "value": lambda s, d, now: (value.classify(s, d.value), None),
    "email": lambda s, d, now: email_appetence.assess(s, d.email, now),
    "channel": lambda s, d, now: (channel.classify(s, d.channel), None),
    "age_band": _age_band,
    "region": lambda s, d, now: (demographics.region_group(s, d.region), None),
    "satisfaction": lambda s, d, now: (satisfaction.classify(s, d.satisfaction), None),
    "category": lambda s, d, now: (category.classify(s, d.category), None),
    "promotion": lambda s, d, now: (promotion.classify(s, d.promotion), None),
    "clv": lambda s, d, now: clv.assess(s, d.clv, now, d.scale),
}
