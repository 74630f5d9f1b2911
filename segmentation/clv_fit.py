"""Maximum-likelihood fit of the BG/NBD and Gamma-Gamma models on a calibration population (numpy/scipy).

The fit runs offline (`segstream calibrate --model clv`), never in `apply`: it takes per-customer
arrays (x, t_x, T in weeks; the mean spend zbar) and returns the parameters that the `clv:` section of a
new definitions version carries. Both likelihoods are maximised over the logarithms of the parameters
(so they stay positive) with L-BFGS-B from several starting points; the best optimum wins. Shapes stay
within 10^-8..10^4 and scales within 10^-8..10^8 (`_SHAPE`, `_SCALE`): data without spread (one buying
rhythm, one price for everyone) has no finite optimum, its shapes growing together with their scales
towards a limit without heterogeneity. Unbounded, the optimiser stopped somewhere on that way (r = 10^40 with
one scipy release, which the definitions refuse; the forecast's series does not converge past ~10^5); at
10^4 a gamma's spread is 1 % of its mean, as good as that limit.
Logarithms are numpy's: data without spread (one price, one rhythm) drives parameters to the edge of the float
range, where `math.log(0)` raised instead of giving the -inf that makes the optimiser step back.
`propose_tiers` turns the population's predicted CLV into tier bounds (quantiles, rounded up to money).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, gammaln

from segmentation.clv_model import BgNbd, GammaGamma
from segmentation.state import CustomerState

__all__ = [
    "FitError",
    "Population",
    "bgnbd_log_likelihood",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "gamma_gamma_log_likelihood",
    "population_at",
    "propose_tiers",
]

Array = npt.NDArray[np.float64]
_SHAPE, _SCALE = (math.log(1e-8), math.log(1e4)), (math.log(1e-8), math.log(1e8))
_BGNBD_BOUNDS = (_SHAPE, _SCALE, _SHAPE, _SHAPE)  # r, alpha (weeks), a, b
_GG_BOUNDS = (_SHAPE, _SHAPE, _SCALE)  # p, q, gamma (in units of the mean spend: `fit_gamma_gamma`)
_BGNBD_STARTS = ((1.0, 1.0, 1.0, 1.0), (0.5, 5.0, 0.8, 2.5), (2.0, 20.0, 2.0, 5.0))
_GG_STARTS = ((1.0, 2.0, 1.0), (5.0, 5.0, 4.0), (2.0, 10.0, 9.0))  # gamma in units of the mean spend


class FitError(ValueError):
    """The data cannot identify the model (too few customers, no repeat buyer, no convergence)."""


@dataclass(frozen=True)
class Population:
    """Calibration data, one entry per customer with a purchase: x, t_x, T (weeks), zbar (major units)."""

    x: Array
    t_x: Array
    big_t: Array
    mean_spend: Array

    @classmethod
    def of(
        cls, x: Sequence[float], t_x: Sequence[float], big_t: Sequence[float], mean_spend: Sequence[float]
    ) -> Population:
        arrays = [np.asarray(values, dtype=np.float64) for values in (x, t_x, big_t, mean_spend)]
        if len({len(a) for a in arrays}) != 1:
            raise FitError("x, t_x, T and mean spend must have one value per customer")
        return cls(*arrays)


_WEEK = timedelta(weeks=1)


def population_at(states: Iterable[CustomerState], until: datetime, scale: Decimal) -> Population:
    """The calibration inputs of every customer with a purchase at or before `until`, measured at `until`
    (the states hold the history up to it): x = purchase days - 1, t_x and T in weeks from the first
    purchase, zbar = net monetary / orders in major units (`scale`: one minor unit), as `segmentation.clv`.
    """
    rows = [
        (
            s.repeat_purchase_days,
            (s.last_purchase_at - s.first_purchase_at) / _WEEK,
            (until - s.first_purchase_at) / _WEEK,
            float(Decimal(max(0, s.gross_minor - s.refunded_minor)) * scale) / s.orders,
        )
        for s in states
        if s.first_purchase_at is not None
        and s.last_purchase_at is not None
        and s.orders > 0
        and s.first_purchase_at <= until
    ]
    return (
        Population.of(*(list(column) for column in zip(*rows, strict=True)))
        if rows
        else Population.of([], [], [], [])
    )


def bgnbd_log_likelihood(m: BgNbd, x: Array, t_x: Array, big_t: Array) -> Array:
    """Per-customer BG/NBD log-likelihood (eq. 6 of Fader, Hardie & Lee 2005), vectorised."""
    r, alpha, a, b = m
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    stay = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + big_t)
    repeat = x > 0
    drop = np.where(
        repeat,
        betaln(a + 1, np.maximum(b + x - 1, 1e-300)) - betaln(a, b) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    return np.asarray(common + np.logaddexp(stay, drop), dtype=np.float64)


def gamma_gamma_log_likelihood(g: GammaGamma, x: Array, mean_spend: Array) -> Array:
    """Per-customer log density of zbar over x purchases under Gamma-Gamma, vectorised (x >= 1)."""
    p, q, gamma = g
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + px * np.log(x)
        + (px - 1) * np.log(mean_spend)
        - (px + q) * np.log(gamma + x * mean_spend),
        dtype=np.float64,
    )


def _maximise(
    objective: Callable[[Array], float],
    starts: tuple[tuple[float, ...], ...],
    bounds: tuple[tuple[float, float], ...],
    what: str,
) -> tuple[float, ...]:
    best: tuple[float, Array] | None = None
    for start in starts:
        with np.errstate(invalid="ignore"):  # finite differences next to an infinite objective
            result = minimize(objective, np.log(np.asarray(start)), method="L-BFGS-B", bounds=bounds)
        if np.isfinite(result.fun) and (best is None or result.fun < best[0]):
            best = (float(result.fun), result.x)
    if best is None:
        raise FitError(f"{what}: the likelihood could not be maximised from any starting point")
    return tuple(float(v) for v in np.exp(best[1]))


def fit_bgnbd(population: Population) -> BgNbd:
    """The BG/NBD parameters maximising the population's likelihood."""
    x, t_x, big_t = population.x, population.t_x, population.big_t
    if len(x) < 10 or not np.any(x > 0):
        raise FitError(f"BG/NBD: needs at least 10 customers and one repeat buyer (got {len(x)} customers)")
    n = len(x)

    def objective(logs: Array) -> float:
        with np.errstate(all="ignore"):
            total = float(np.sum(bgnbd_log_likelihood(BgNbd(*np.exp(logs)), x, t_x, big_t)))
        return -total / n if math.isfinite(total) else math.inf

    return BgNbd(*_maximise(objective, _BGNBD_STARTS, _BGNBD_BOUNDS, "BG/NBD"))


def fit_gamma_gamma(population: Population) -> GammaGamma:
    """Gamma-Gamma parameters from the repeat buyers (x > 0) with a positive mean spend."""
    keep = (population.x > 0) & (population.mean_spend > 0)
    x, spend = population.x[keep], population.mean_spend[keep]
    if len(x) < 10:
        raise FitError(f"Gamma-Gamma: needs at least 10 repeat buyers with spend (got {len(x)})")
    if not np.all(np.isfinite(spend)):  # no unit of money to fit in (inf / inf), nor a finite likelihood
        bad = int(np.sum(~np.isfinite(spend)))
        raise FitError(f"Gamma-Gamma: {bad} of {len(x)} repeat buyers have a mean spend that is not finite")
    n, unit = len(x), float(np.mean(spend))
    scaled = spend / unit  # fitted in units of the mean spend: gamma scales with the money unit, p and q do
    # not, so the same starts and bounds serve dong and euros (in dong the fit stopped at its start)

    def objective(logs: Array) -> float:
        with np.errstate(all="ignore"):  # the optimiser may try parameters past the float range
            g = GammaGamma(*np.exp(logs))
            total = float(np.sum(gamma_gamma_log_likelihood(g, x, scaled)))
        # q <= 1 has no finite expected spend: outside the model's usable range
        return -total / n if math.isfinite(total) and g.q > 1.0 else math.inf

    p, q, gamma = _maximise(objective, _GG_STARTS, _GG_BOUNDS, "Gamma-Gamma")
    return GammaGamma(p, q, gamma * unit)


def propose_tiers(clv: Sequence[float], quantiles: Sequence[float], step: Decimal) -> list[Decimal]:
    """Tier lower bounds: 0, then the CLV quantiles (values of the population: inverted CDF) rounded up to
    `step` (at least one step), each made strictly greater than the previous one."""
    values = np.asarray(clv, dtype=np.float64)
    if len(values) == 0:
        raise FitError("no customer to take CLV quantiles from")
    if not np.all(np.isfinite(values)):  # a model the data cannot pin down: refuse, never write NaN tiers
        bad = int(np.sum(~np.isfinite(values)))
        raise FitError(f"the fitted model predicts no finite CLV for {bad} of {len(values)} customers")
    bounds = [Decimal(0)]
    for q in np.quantile(values, np.asarray(quantiles, dtype=np.float64), method="inverted_cdf"):
        bound = max(Decimal(repr(float(q))).quantize(step, ROUND_CEILING), step)
        bounds.append(bound if bound > bounds[-1] else bounds[-1] + step)
    return bounds
