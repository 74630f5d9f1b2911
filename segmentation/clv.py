"""CLV grid: tiers of predicted 12-month customer lifetime value (BG/NBD x Gamma-Gamma), moved by time too.

Exists only when the definitions carry a `clv:` section (written by `segstream calibrate --model clv`);
without it every customer's `clv` segment stays empty and nothing else changes. Per customer:

* x = repeat purchase days (distinct UTC purchase days - 1, `CustomerState.purchase_days`), t_x = weeks
  from the first to the last purchase, T = weeks from the first purchase to the clock;
* zbar = net monetary / orders (refunds included), the mean spend the Gamma-Gamma model sees, on x purchases;
* p_alive, expected_purchases_12m = E[Y(h) | x, t_x, T] (h = `horizon_days` / 7 weeks) and
  clv_12m = expected_purchases_12m x E[Z | zbar, x], undiscounted, in base-currency major units.

While no purchase arrives only T grows, and p_alive and clv_12m both fall with it (the tests check the
monotonicity), so a customer only ever moves *down* the tiers by time. `next_change` finds the exact
microsecond at which clv_12m drops below the current tier's lower bound: regula falsi (Illinois) on T
down to a bracket of a few microseconds, then the first microsecond whose tier differs. See docs/clv.md.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from segmentation.clv_model import BgNbd, Forecast, GammaGamma, expected_spend, p_alive
from segmentation.config_reading import DefinitionsError, read_decimal, read_int, read_list, read_str
from segmentation.state import CustomerState

__all__ = [
    "NO_PURCHASE",
    "ClvConfig",
    "ClvFigures",
    "assess",
    "explain",
    "figures",
    "first_below",
    "history_inputs",
]

GRID = "clv"
NO_PURCHASE = "no_purchase"
_US_PER_WEEK = 604_800_000_000
_US = timedelta(microseconds=1)
_KEYS = frozenset({"bgnbd", "gamma_gamma", "horizon_days", "tiers", "fitted"})


@dataclass(frozen=True, slots=True)
class ClvConfig:
    """Fitted parameters, horizon and tiers (lower bounds in base-currency major units, first 0)."""

    bgnbd: BgNbd
    gamma_gamma: GammaGamma
    horizon_days: int
    segments: tuple[str, ...]
    lower_bounds: tuple[Decimal, ...]
    fitted: tuple[tuple[str, str], ...] = ()  # what calibrate recorded (data, customers): informative only
    horizon_weeks: float = field(init=False, repr=False, compare=False)
    bounds: tuple[float, ...] = field(init=False, repr=False, compare=False)
    forecasts: dict[int, Forecast] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "horizon_weeks", self.horizon_days / 7)
        object.__setattr__(self, "bounds", tuple(float(b) for b in self.lower_bounds))
        object.__setattr__(self, "forecasts", {})  # per x, made on first use (see clv_model.Forecast)

    def forecast(self, x: int) -> Forecast:
        """The expected-purchases series for customers with x repeat purchase days."""
        found = self.forecasts.get(x)
        if found is None:
            found = self.forecasts[x] = Forecast(self.bgnbd, x, self.horizon_weeks)
        return found

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> ClvConfig:
        extra = set(raw) - _KEYS
        if extra:
            raise DefinitionsError(f"clv: unknown keys {sorted(map(str, extra))}")
        bg = BgNbd(*(_positive(raw, "bgnbd", key) for key in ("r", "alpha", "a", "b")))
        if bg.a == 1.0 or bg.a + bg.b <= 1.0:
            raise DefinitionsError(
                "clv.bgnbd: a must differ from 1 and a + b exceed 1 (the closed form divides by a - 1 and"
                " its series needs a + b - 1 > 0)"
            )
        gg = GammaGamma(*(_positive(raw, "gamma_gamma", key) for key in ("p", "q", "gamma")))
        if gg.q <= 1.0:
            raise DefinitionsError("clv.gamma_gamma.q: must be > 1 (the expected spend divides by q - 1)")
        horizon = read_int(raw, "horizon_days", 365, "clv.")
        if not 1 <= horizon <= 3650:
            raise DefinitionsError(f"clv.horizon_days: must be between 1 and 3650, got {horizon}")
        names: list[str] = []
        bounds: list[Decimal] = []
        for i, item in enumerate(read_list(raw, "tiers", [], "clv.")):
            where = f"clv.tiers[{i}]"
            if not isinstance(item, Mapping):
                raise DefinitionsError(f"{where}: expected a mapping with segment and from")
            names.append(read_str(item, "segment", "", f"{where}."))
            bounds.append(read_decimal(item.get("from"), f"{where}.from"))
        if not names or bounds[0] != 0:
            raise DefinitionsError("clv.tiers: at least one tier, the first starting at 0")
        if any(b <= a for a, b in itertools.pairwise(bounds)):
            raise DefinitionsError("clv.tiers: 'from' bounds must be strictly ascending")
        if len(set(names)) != len(names) or NO_PURCHASE in names:
            raise DefinitionsError(f"clv.tiers: segment names must be unique and not {NO_PURCHASE!r}")
        fitted = raw.get("fitted") or {}
        if not isinstance(fitted, Mapping):
            raise DefinitionsError("clv.fitted: expected a mapping")
        info = tuple((str(k), str(v)) for k, v in fitted.items())
        return cls(bg, gg, horizon, tuple(names), tuple(bounds), info)


def _positive(raw: Mapping[str, object], section: str, key: str) -> float:
    where = f"clv.{section}.{key}"
    values = raw.get(section)
    if not isinstance(values, Mapping):
        raise DefinitionsError(f"clv.{section}: expected a mapping of parameters")
    value = float(read_decimal(values.get(key), where))
    if not 0.0 < value < math.inf:
        raise DefinitionsError(f"{where}: must be a positive number, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class ClvFigures:
    """The model's figures for one customer at one instant (what rules, readers and `why` show)."""

    p_alive: float
    expected_purchases: float
    expected_spend: float
    clv: float


def history_inputs(s: CustomerState, now: datetime) -> tuple[int, float, float, float] | None:
    """x, t_x (weeks), T (weeks) and zbar (major units) of a customer with a purchase, else None."""
    first, last = s.first_purchase_at, s.last_purchase_at
    if first is None or last is None or s.orders <= 0:
        return None
    t_x = (last - first) / _US / _US_PER_WEEK
    big_t = max(t_x, (now - first) / _US / _US_PER_WEEK)  # a late purchase can move `last` past `now`
    return s.repeat_purchase_days, t_x, big_t, max(0, s.gross_minor - s.refunded_minor) / s.orders


def figures(s: CustomerState, cfg: ClvConfig, now: datetime, scale: Decimal) -> ClvFigures | None:
    """p_alive, expected purchases and spend, and CLV over the horizon at `now`; None without purchase."""
    inputs = history_inputs(s, now)
    if inputs is None:
        return None
    x, t_x, big_t, mean_minor = inputs
    return _figures(cfg, x, t_x, big_t, mean_minor * float(scale))


def _figures(cfg: ClvConfig, x: int, t_x: float, big_t: float, mean_spend: float) -> ClvFigures:
    purchases = cfg.forecast(x).expected(t_x, big_t)
    spend = expected_spend(cfg.gamma_gamma, x, mean_spend)
    return ClvFigures(p_alive(cfg.bgnbd, x, t_x, big_t), purchases, spend, purchases * spend)


def _tier(cfg: ClvConfig, value: float) -> int:
    return max(0, bisect_right(cfg.bounds, value) - 1)


def assess(
    s: CustomerState, cfg: ClvConfig | None, now: datetime, scale: Decimal
) -> tuple[str | None, datetime | None]:
    """The tier at `now` and the instant it next changes with time alone (None: never, or no clv grid)."""
    if cfg is None:
        return None, None
    inputs = history_inputs(s, now)
    if inputs is None:
        return NO_PURCHASE, None
    x, t_x, big_t, mean_minor = inputs
    spend = expected_spend(cfg.gamma_gamma, x, mean_minor * float(scale))
    expected = cfg.forecast(x).expected
    tier = _tier(cfg, expected(t_x, big_t) * spend)
    if tier == 0:  # the lowest tier starts at 0: clv_12m never goes below it
        return cfg.segments[0], None
    first = s.first_purchase_at
    assert first is not None
    bound = cfg.bounds[tier]

    def gap(us: int) -> float:  # clv_12m minus the tier's bound, `us` microseconds after the first purchase
        return expected(t_x, us / _US_PER_WEEK) * spend - bound

    start = max((now - first) // _US, math.ceil(t_x * _US_PER_WEEK))
    limit = (datetime.max.replace(tzinfo=first.tzinfo) - first) // _US
    crossing = first_below(gap, start, limit)
    return cfg.segments[tier], None if crossing is None else first + timedelta(microseconds=crossing)


def first_below(gap: Callable[[int], float], start: int, limit: int) -> int | None:
    """The smallest integer u > start with gap(u) < 0, for a gap falling in u with gap(start) >= 0.

    Brackets the root by steps from one week, each extrapolating the last secant (at least doubling),
    then regula falsi with the Illinois modification on integers (a bisection step after three
    interpolations in a row that kept more than half the bracket), until the bracket is [u - 1, u]: exact
    to the microsecond for the function as computed, in ~11 evaluations on the benchmark's customers.
    None if the root lies beyond `limit` (datetime.max).
    """
    lo, f_lo = start, gap(start)
    step = _US_PER_WEEK
    hi = lo + step
    while True:
        if hi > limit:
            return None
        f_hi = gap(hi)
        if f_hi < 0:
            break
        slope = (f_hi - f_lo) / step
        step = max(2 * step, int(-1.5 * f_hi / slope)) if slope < 0 else 4 * step
        lo, f_lo = hi, f_hi
        hi = lo + step
    side = slow = 0
    while hi - lo > 1:
        width = hi - lo
        c = lo + int(width * (f_lo / (f_lo - f_hi))) if slow < 3 else (lo + hi) // 2
        c = min(max(c, lo + 1), hi - 1)
        f_c = gap(c)
        if f_c >= 0:
            lo, f_lo = c, f_c
            if side > 0:
                f_hi /= 2
            side = 1
        else:
            hi, f_hi = c, f_c
            if side < 0:
                f_lo /= 2
            side = -1
        slow = slow + 1 if 2 * (hi - lo) > width else 0
    return hi


def explain(
    s: CustomerState, cfg: ClvConfig | None, now: datetime, segment: str, scale: Decimal
) -> dict[str, str]:
    """The tier's rule and the model's figures at `now` (for `Transition.why`)."""
    assert cfg is not None  # a clv segment exists only under definitions with a clv section
    numbers = figures(s, cfg, now, scale)
    if numbers is None:
        return {"rule": "no purchase yet"}
    index = cfg.segments.index(segment)
    upper = "" if index + 1 == len(cfg.segments) else f" and clv_12m < {cfg.lower_bounds[index + 1]}"
    return {
        "rule": f"clv_12m >= {cfg.lower_bounds[index]}{upper}",
        "clv_12m": repr(numbers.clv),  # full precision: at a crossing it is just below a bound
        "p_alive": f"{numbers.p_alive:.6f}",
        "expected_purchases_12m": f"{numbers.expected_purchases:.6f}",
        "expected_spend": f"{numbers.expected_spend:.2f}",
        "repeat_purchase_days": str(s.repeat_purchase_days),
    }
