"""Satisfaction grid (attitudinal): NPS bands of the most recent survey score.

detractor (0..detractor_max), passive (..passive_max), promoter (above), unknown (no survey yet).
The most recent survey *by event time* counts: a late, older answer never overrides a newer one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from segmentation.config_reading import DefinitionsError, read_int
from segmentation.state import CustomerState

__all__ = ["SEGMENTS", "SatisfactionConfig", "classify", "explain"]

GRID = "satisfaction"
SEGMENTS = ("detractor", "passive", "promoter", "unknown")


@dataclass(frozen=True, slots=True)
class SatisfactionConfig:
    detractor_max: int = 6
    passive_max: int = 8

    def __post_init__(self) -> None:
        if not 0 <= self.detractor_max < self.passive_max < 10:
            raise DefinitionsError(
                "satisfaction: need 0 <= detractor_max < passive_max < 10,"
                f" got {self.detractor_max}, {self.passive_max}"
            )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> SatisfactionConfig:
        return cls(
            detractor_max=read_int(raw, "detractor_max", 6, "satisfaction."),
            passive_max=read_int(raw, "passive_max", 8, "satisfaction."),
        )


def classify(s: CustomerState, cfg: SatisfactionConfig) -> str:
    score = s.survey_score
    if score is None:
        return "unknown"
    if score <= cfg.detractor_max:
        return "detractor"
    return "passive" if score <= cfg.passive_max else "promoter"


def explain(s: CustomerState, cfg: SatisfactionConfig, segment: str) -> dict[str, str]:
    rules = {
        "unknown": "no survey answer yet",
        "detractor": f"survey_score <= {cfg.detractor_max}",
        "passive": f"{cfg.detractor_max} < survey_score <= {cfg.passive_max}",
        "promoter": f"survey_score > {cfg.passive_max}",
    }
    why = {"rule": rules[segment]}
    if s.survey_score is not None:
        why["survey_score"] = str(s.survey_score)
    return why
