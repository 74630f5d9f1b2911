"""The CLV figures as audience fields: p_alive, expected_purchases_12m, clv_12m (FALLING rule fields).

Each is the model's figure at the instant a rule is evaluated; it only falls while no event arrives, so a
comparison with it flips at most once by time, at the instant `Figure.first_below` gives exactly.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from segmentation.clv import ClvConfig, first_below, history_inputs
from segmentation.clv_model import alive_crossing, expected_spend, p_alive
from segmentation.state import CustomerState

__all__ = ["FIELDS", "Figure", "figure"]

_US_PER_WEEK = 604_800_000_000
_US = timedelta(microseconds=1)

FIELDS = ("p_alive", "expected_purchases_12m", "clv_12m")  # the audience fields (`Figure`)


class Figure:
    """One of `FIELDS` for one customer, at any instant while no event arrives (a FALLING field value).

    The interface rules rely on for FALLING fields: `at(now)` is the figure at `now`; `first_below` the
    first microsecond at which it is below a limit: p_alive by its closed form
    ((alpha+T)/(alpha+t_x))^(r+x) = (1/limit - 1)(b+x-1)/a, the others by `clv.first_below`'s search;
    both then checked against `at` to the microsecond, so a rule's comparison, which calls `at`, flips
    exactly there. Its text is the figure at the state's clock (for `why`).
    """

    __slots__ = ("_cfg", "_first", "_name", "_shown", "_spend", "_t_x", "_x")

    def __init__(self, cfg: ClvConfig, name: str, s: CustomerState, scale: Decimal) -> None:
        inputs = history_inputs(s, s.clock or datetime.max)
        assert inputs is not None and s.first_purchase_at is not None  # `figure` checked
        self._x, self._t_x, big_t, mean_minor = inputs
        self._cfg, self._name, self._first = cfg, name, s.first_purchase_at
        self._spend = expected_spend(cfg.gamma_gamma, self._x, mean_minor * float(scale))
        self._shown = self._value(big_t)

    def _value(self, big_t: float) -> float:
        cfg, x = self._cfg, self._x
        if self._name == "p_alive":
            return p_alive(cfg.bgnbd, x, self._t_x, big_t)
        purchases = cfg.forecast(x).expected(self._t_x, big_t)
        return purchases if self._name == "expected_purchases_12m" else purchases * self._spend

    def _weeks(self, us: int) -> float:
        return max(self._t_x, us / _US_PER_WEEK)

    def at(self, now: datetime) -> float:
        return self._value(self._weeks((now - self._first) // _US))

    def first_below(self, limit: Decimal, inclusive: bool, now: datetime) -> datetime | None:
        def below(us: int) -> bool:
            value = self._value(self._weeks(us))
            return value <= limit if inclusive else value < limit

        start = (now - self._first) // _US
        if below(start):
            return None  # already below: it stays so (the figure only falls)
        first = self._first
        limit_us = (datetime.max.replace(tzinfo=first.tzinfo) - first) // _US
        if self._name == "p_alive":
            weeks = alive_crossing(self._cfg.bgnbd, self._x, self._t_x, float(limit))
            if weeks is None:
                return None
            found = min(max(start + 1, round(weeks * _US_PER_WEEK)), limit_us)
        else:
            bound = float(limit)
            crossing = first_below(lambda us: self._value(self._weeks(us)) - bound, start, limit_us)
            if crossing is None:
                return None
            found = crossing
        while found < limit_us and not below(found):  # the float estimate against the exact comparison
            found += 1
        while found - 1 > start and below(found - 1):
            found -= 1
        return first + timedelta(microseconds=found) if below(found) else None

    def __str__(self) -> str:
        return f"{self._shown:.6f}"


def figure(s: CustomerState, cfg: ClvConfig | None, name: str, scale: Decimal) -> Figure | None:
    """The audience field `name` of a customer (None, i.e. null, without purchase or clv section)."""
    if cfg is None or s.first_purchase_at is None or s.last_purchase_at is None or s.orders <= 0:
        return None
    return Figure(cfg, name, s, scale)
