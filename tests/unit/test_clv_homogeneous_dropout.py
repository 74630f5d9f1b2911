"""E[Y(t)] when the dropout probability is nearly the same for everyone (large a and b of BG/NBD).

A maximum-likelihood fit on customers whose dropout varies little gives such parameters (a ~ 2e3, b ~ 4e3
from `calibrate --model clv` on 50 customers with one price and 1-5 purchases); a hand-written `clv:`
section may carry them too. The Euler-transformed series then has terms near 1e1600 multiplied by a
prefactor near 1e-1600: both overflow or underflow in floats, and the product came out NaN, which put every
customer in the *top* tier (bisect of NaN) with `clv_12m: nan` in its `why`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from scipy import special

from segmentation.clv import ClvConfig, assess, figures
from segmentation.clv_fit import FitError, propose_tiers
from segmentation.clv_model import BgNbd, Forecast, GammaGamma, expected_purchases
from segmentation.state import CustomerState

HOMOGENEOUS = BgNbd(r=1.3488579, alpha=8.7410709, a=1908.6835, b=4167.1641)
SPEND = GammaGamma(p=6.25, q=3.74, gamma=15.44)


def _printed(m: BgNbd, x: int, t_x: float, big_t: float, t: float) -> float:
    """Eq. 10 as printed (no transformation), scipy's 2F1: well behaved for large a."""
    r, alpha, a, b = m
    z = t / (alpha + big_t + t)
    bracket = 1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * special.hyp2f1(
        r + x, b + x, a + b + x - 1, z
    )
    dead = a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x) if x > 0 else 0.0
    return float((a + b + x - 1) / (a - 1) * bracket / (1 + dead))


@pytest.mark.parametrize(
    ("x", "t_x", "big_t"),
    [(0, 0.0, 0.0), (0, 0.0, 30.0), (2, 3.0, 0.0 + 3.0), (2, 3.0, 20.0), (4, 30.0, 52.0), (12, 40.0, 41.0)],
)
def test_expected_purchases_are_finite_with_large_a_and_b(x: int, t_x: float, big_t: float) -> None:
    t = 365 / 7
    printed = _printed(HOMOGENEOUS, x, t_x, big_t, t)
    assert math.isfinite(printed) and printed > 0
    assert expected_purchases(HOMOGENEOUS, x, t_x, big_t, t) == pytest.approx(printed, rel=1e-9)
    assert Forecast(HOMOGENEOUS, x, t).expected(t_x, big_t) == pytest.approx(printed, rel=1e-9)


def test_the_clv_tier_of_a_customer_is_not_top_by_nan() -> None:
    cfg = ClvConfig(
        HOMOGENEOUS, SPEND, 365, ("low", "medium", "top"), (Decimal(0), Decimal(50), Decimal(10**6))
    )
    first = datetime(2026, 1, 1, tzinfo=UTC)
    state = CustomerState.new("c1")._replace(
        first_purchase_at=first,
        last_purchase_at=first + timedelta(weeks=3),
        orders=3,
        purchase_days=3,
        gross_minor=12_000,
        clock=first + timedelta(weeks=5),
    )
    numbers = figures(state, cfg, first + timedelta(weeks=5), Decimal("0.01"))
    assert numbers is not None and math.isfinite(numbers.clv) and numbers.clv >= 0
    assert assess(state, cfg, first + timedelta(weeks=5), Decimal("0.01"))[0] != "top"


@pytest.mark.parametrize(("r", "a", "b"), [(2.0, 2.0, 1.0), (4.5, 2.5, 3.0)])
def test_a_series_that_ends_gives_the_same_forecast_both_ways(r: float, a: float, b: float) -> None:
    """r = a + b - 1 + n: the series' first parameter reaches 0 at term n, so the sum is a polynomial and
    stops there; the precomputed forecast and the term-by-term one still agree."""
    m = BgNbd(r=r, alpha=10.0, a=a, b=b)
    forecast = Forecast(m, 0, 52.0)
    for big_t in (0.0, 5.0, 40.0):
        assert forecast.expected(0.0, big_t) == pytest.approx(
            expected_purchases(m, 0, 0.0, big_t, 52.0), rel=1e-12
        )


def test_tiers_are_refused_when_a_prediction_is_not_finite() -> None:
    with pytest.raises(FitError, match="no finite CLV for 1 of 3 customers"):
        propose_tiers([10.0, math.nan, 30.0], [0.5], Decimal("0.01"))
