"""Email grid (relational): appetence for email from opens and clicks that fade with time.

Each open adds 1 and each click adds 1 to its own score; both decay exponentially with the same
half-life, so the engagement score `(opens + click_weight * clicks) * 2^-(age / half_life)` only falls
between events. Segments, first match wins: unsubscribed; no_email (never sent, opened or clicked);
engaged (score >= engaged_at); passive (score >= passive_at); unresponsive.

The scores are stored as of `email_scores_at`; a late open/click adds its contribution already decayed
to that reference time, so the score does not depend on arrival order (up to float rounding).
The instant at which a decaying score crosses a threshold is solved analytically
(t = t0 + half_life * log2(score0 / threshold)), rounded up to the microsecond and then verified
against the very function used to classify, so `next_change` is exact for the classifier.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from segmentation.config_reading import DefinitionsError, read_float
from segmentation.state import CustomerState

__all__ = [
    "MAX_HALF_LIFE_DAYS",
    "SEGMENTS",
    "EmailConfig",
    "assess",
    "classify",
    "decay",
    "explain",
    "next_change",
    "score_at",
]

GRID = "email"
SEGMENTS = ("engaged", "passive", "unresponsive", "unsubscribed", "no_email")
_TICK = timedelta(microseconds=1)
# A century: a longer half-life is no decay at all, and the crossing search (`_crossing`), which steps in
# microseconds of a float offset, slows then overflows (0.6 s an open at 1e11 days, OverflowError at 1e300)
MAX_HALF_LIFE_DAYS = 36_500


@dataclass(frozen=True, slots=True)
class EmailConfig:
    half_life_days: float = 30.0
    click_weight: float = 2.0
    engaged_at: float = 3.0
    passive_at: float = 0.5
    half_life_seconds: float = field(init=False, repr=False, compare=False)
    rules: dict[str, str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "half_life_seconds", self.half_life_days * 86400.0)
        rules = {
            "unsubscribed": "unsubscribed",
            "no_email": "no email sent, opened or clicked",
            "engaged": f"score >= {self.engaged_at}",
            "passive": f"{self.passive_at} <= score < {self.engaged_at}",
            "unresponsive": f"score < {self.passive_at}",
        }
        object.__setattr__(self, "rules", rules)
        if not 0 < self.half_life_days <= MAX_HALF_LIFE_DAYS:
            raise DefinitionsError(
                f"email.half_life_days: must be > 0 and at most {MAX_HALF_LIFE_DAYS} (a century), got"
                f" {self.half_life_days}"
            )
        if not self.click_weight >= 0:
            raise DefinitionsError(f"email.click_weight: must be >= 0, got {self.click_weight}")
        if not 0 < self.passive_at < self.engaged_at:
            raise DefinitionsError(
                f"email: need 0 < passive_at < engaged_at, got {self.passive_at}, {self.engaged_at}"
            )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> EmailConfig:
        w = "email."
        return cls(
            half_life_days=read_float(raw, "half_life_days", 30.0, w),
            click_weight=read_float(raw, "click_weight", 2.0, w),
            engaged_at=read_float(raw, "engaged_at", 3.0, w),
            passive_at=read_float(raw, "passive_at", 0.5, w),
        )


def decay(elapsed: timedelta, half_life_seconds: float) -> float:
    """Factor by which a score shrinks over `elapsed` (whole microseconds, as every instant here)."""
    return _decay_us(elapsed // _TICK, half_life_seconds)


def _decay_us(microseconds: int, half_life_seconds: float) -> float:
    return math.exp2(-(microseconds / 1e6) / half_life_seconds)


def score_at(s: CustomerState, cfg: EmailConfig, now: datetime) -> float:
    """Engagement score at `now` (0.0 before any open or click)."""
    ref = s.email_scores_at
    if ref is None:
        return 0.0
    base = s.email_open_score + cfg.click_weight * s.email_click_score
    return base * _decay_us((now - ref) // _TICK, cfg.half_life_seconds)


def classify(s: CustomerState, cfg: EmailConfig, now: datetime) -> str:
    if s.unsubscribed:
        return "unsubscribed"
    if s.emails_sent == 0 and s.email_opens == 0 and s.email_clicks == 0:
        return "no_email"
    score = score_at(s, cfg, now)
    if score >= cfg.engaged_at:
        return "engaged"
    return "passive" if score >= cfg.passive_at else "unresponsive"


def next_change(s: CustomerState, cfg: EmailConfig, now: datetime, current: str) -> datetime | None:
    """First microsecond after `now` at which the decaying score falls below the current threshold."""
    if current not in ("engaged", "passive") or s.email_scores_at is None:
        return None
    threshold = cfg.engaged_at if current == "engaged" else cfg.passive_at
    ref = s.email_scores_at
    base = s.email_open_score + cfg.click_weight * s.email_click_score
    return _at(ref, _crossing(base, threshold, cfg.half_life_seconds, (now - ref) // _TICK))


def _at(ref: datetime, microseconds: int) -> datetime | None:
    """`ref` + that many microseconds, None past datetime.max (never reached, segmentation/instants)."""
    try:
        # _TICK * n is timedelta(microseconds=n) exactly, at a third of the cost of the keyword constructor
        return ref + _TICK * microseconds
    except OverflowError:
        return None


def _crossing(base: float, threshold: float, half_life: float, elapsed: int) -> int:
    """First offset (µs from the reference time) after `elapsed` where the score is below `threshold`.

    Offsets are evaluated with the very formula of `score_at`, so the answer is exact for it.
    """
    earliest = elapsed + 1
    offset = max(math.ceil(half_life * math.log2(base / threshold) * 1e6), earliest)
    while base * _decay_us(offset, half_life) >= threshold:
        offset += 1
    while offset > earliest and base * _decay_us(offset - 1, half_life) < threshold:
        offset -= 1
    return offset


def assess(s: CustomerState, cfg: EmailConfig, now: datetime) -> tuple[str, datetime | None]:
    """`classify` and `next_change` in one pass (the hot path of every open and click)."""
    if s.unsubscribed:
        return "unsubscribed", None
    if s.emails_sent == 0 and s.email_opens == 0 and s.email_clicks == 0:
        return "no_email", None
    ref = s.email_scores_at
    if ref is None:
        return "unresponsive", None
    base = s.email_open_score + cfg.click_weight * s.email_click_score
    half_life = cfg.half_life_seconds
    elapsed = (now - ref) // _TICK
    score = base * _decay_us(elapsed, half_life)
    if score >= cfg.engaged_at:
        segment, threshold = "engaged", cfg.engaged_at
    elif score >= cfg.passive_at:
        segment, threshold = "passive", cfg.passive_at
    else:
        return "unresponsive", None
    return segment, _at(ref, _crossing(base, threshold, half_life, elapsed))


def explain(s: CustomerState, cfg: EmailConfig, now: datetime, segment: str) -> dict[str, str]:
    return {
        "rule": cfg.rules[segment],
        "score": repr(score_at(s, cfg, now)),
        "half_life_days": repr(cfg.half_life_days),
        "emails_sent": str(s.emails_sent),
        "email_opens": str(s.email_opens),
        "email_clicks": str(s.email_clicks),
    }
