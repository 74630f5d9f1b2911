"""Closed forms of the BG/NBD purchase model and the Gamma-Gamma spend model (see docs/clv.md).

BG/NBD (Fader, Hardie & Lee 2005): while alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha)
per week, and after each repeat purchase drops out with probability p ~ Beta(a, b). Per customer the
inputs are x (repeat purchase days), t_x (weeks from the first purchase to the last) and T (weeks from
the first purchase to the clock). Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"): spend per transaction
~ Gamma(p, nu), nu ~ Gamma(q, gamma); the input is the mean spend zbar over the customer's x transactions.

Plain `math` for the scalar forms; the Gauss hypergeometric function is our own series (`hyp2f1`),
checked against scipy in the tests. `Forecast` is the same series for one x and horizon with its
coefficients computed once, summed by numpy: what the clv grid calls on the hot path of `apply`.
`clv_fit` has the vectorised (numpy/scipy) likelihoods for the fit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "BgNbd",
    "Forecast",
    "GammaGamma",
    "alive_crossing",
    "bgnbd_log_likelihood",
    "expected_purchases",
    "expected_spend",
    "gamma_gamma_log_likelihood",
    "hyp2f1",
    "p_alive",
]

_EPSILON = 1e-15  # relative size of the neglected tail of the series
_MAX_TERMS = 100_000


class BgNbd(NamedTuple):
    """BG/NBD parameters: rate shape r and scale alpha (weeks), dropout Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


class GammaGamma(NamedTuple):
    """Gamma-Gamma parameters: spend shape p, and nu ~ Gamma(q, gamma) (gamma in base-currency units)."""

    p: float
    q: float
    gamma: float


def hyp2f1(a: float, b: float, c: float, z: float, log_scale: float = 0.0) -> float:
    """Gauss hypergeometric 2F1(a, b; c; z) by its power series, for 0 <= z < 1 and c > 0, times
    exp(`log_scale`).

    The series converges for |z| < 1; the ratio of consecutive terms, (a+n)(b+n)z / ((c+n)(n+1)), tends
    to z. Once past the last sign change (n > -a, n > -b) and with that ratio below rho = max(ratio, z) < 1,
    the tail is at most |term| rho/(1-rho) (a geometric bound), and the sum stops when that bound is below
    1e-15 of the sum. Raises ArithmeticError outside the domain or if 100 000 terms do not suffice.
    Terms are carried as logarithms with the scale folded in: with large parameters (a BG/NBD fit with
    little dropout heterogeneity, a ~ 1e3) the series reaches 1e1600 while its prefactor is 1e-1600, and
    separately both leave the float range (their product was NaN).
    """
    if not (0.0 <= z < 1.0 and c > 0.0):
        raise ArithmeticError(f"hyp2f1: series used only for 0 <= z < 1 and c > 0 (z={z}, c={c})")
    log_z = math.log(z) if z > 0.0 else -math.inf
    log_term, sign = log_scale, 1.0
    total = term = math.exp(log_scale)
    n = 0
    while n < _MAX_TERMS:
        ratio = (a + n) * (b + n) / ((c + n) * (n + 1))
        if ratio == 0.0 or log_z == -math.inf:  # the series ends (a polynomial) or z = 0
            return total
        log_term += math.log(abs(ratio)) + log_z
        sign = sign if ratio > 0 else -sign
        term = sign * math.exp(log_term)
        total += term
        n += 1
        if n > -a and n > -b:
            rho = max(abs(ratio) * z, z)
            if rho < 1.0 and abs(term) * rho <= _EPSILON * abs(total) * (1.0 - rho):
                return total
    raise ArithmeticError(f"hyp2f1({a}, {b}; {c}; {z}): no convergence in {_MAX_TERMS} terms")


def _odds_dead(m: BgNbd, x: int, t_x: float, big_t: float) -> float:
    """(a / (b+x-1)) ((alpha+T)/(alpha+t_x))^(r+x) for x > 0: odds of dead against alive; 0 for x = 0."""
    if x == 0:
        return 0.0
    return m.a / (m.b + x - 1) * math.exp((m.r + x) * math.log((m.alpha + big_t) / (m.alpha + t_x)))


def p_alive(m: BgNbd, x: int, t_x: float, big_t: float) -> float:
    """P(alive | x, t_x, T): 1 without repeat purchase (BG/NBD drops out only after a purchase)."""
    return 1.0 / (1.0 + _odds_dead(m, x, t_x, big_t))


def alive_crossing(m: BgNbd, x: int, t_x: float, threshold: float) -> float | None:
    """The age T (weeks) at which P(alive) equals `threshold`, if it ever does: P(alive) falls with T.

    Solves 1/(1 + K ((alpha+T)/(alpha+t_x))^(r+x)) = theta, K = a/(b+x-1), for T:
    T = (alpha+t_x) ((1/theta - 1)/K)^(1/(r+x)) - alpha. None when x = 0 (P(alive) stays 1) or theta is
    not in (0, 1).
    """
    if x == 0 or not 0.0 < threshold < 1.0:
        return None
    k = m.a / (m.b + x - 1)
    return (m.alpha + t_x) * math.exp(math.log((1.0 / threshold - 1.0) / k) / (m.r + x)) - m.alpha


def expected_purchases(m: BgNbd, x: int, t_x: float, big_t: float, t: float) -> float:
    """E[Y(t) | x, t_x, T]: expected purchases in the next t weeks (eq. 10 of Fader, Hardie & Lee 2005).

    (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)] / (1 + odds of being dead),
    z = t/(alpha+T+t). The 2F1 is taken through Euler's transformation 2F1(A, B; C; z) =
    (1-z)^(C-A-B) 2F1(C-A, C-B; C; z): its terms decay like n^(a-2-r-x) z^n instead of n^(r+x-a) z^n,
    so a frequent buyer needs a few terms, not thousands; the power then simplifies to
    ((alpha+T)/(alpha+T+t))^(a-1).
    Requires a != 1 (the closed form divides by a - 1).
    """
    c = m.a + m.b + x - 1.0
    base = (m.alpha + big_t) / (m.alpha + big_t + t)
    bracket = 1.0 - hyp2f1(c - m.r - x, m.a - 1.0, c, t / (m.alpha + big_t + t), (m.a - 1.0) * math.log(base))
    return c / (m.a - 1.0) * bracket / (1.0 + _odds_dead(m, x, t_x, big_t))


class Forecast:
    """E[Y(t) | x, t_x, T] for one model, one x and one horizon t, for any T >= 0, fast.

    The Euler-transformed series of `expected_purchases` is sum_n c_n z^n with coefficients c_n that do
    not depend on T: they are computed once here, up to the degree where the tail bound of `hyp2f1` falls
    below 1e-15 of the sum at the largest z, t/(alpha+t) (T = 0; z only falls as T grows), and each
    evaluation is one numpy dot product of them with the powers of z (~3 us against ~200 us for the
    term-by-term loop when z is near 1, as it is for young customers). The coefficients are kept as
    logarithms and signs, and each term is exp(log c_n + n log z + (a-1) log((alpha+T)/(alpha+T+t))) with the
    prefactor inside: for large a (little dropout heterogeneity) c_n z^n and the prefactor overflow and
    underflow the float range separately, which made E[Y] NaN (see `hyp2f1`).
    """

    __slots__ = ("_degrees", "_logs", "_m", "_scale", "_signs", "_t", "_x")

    def __init__(self, m: BgNbd, x: int, t: float) -> None:
        a, b, c = m.a + m.b - 1.0 - m.r, m.a - 1.0, m.a + m.b + x - 1.0
        if c <= 0.0:
            raise ArithmeticError(f"clv forecast: the series needs a + b > 1 (a={m.a}, b={m.b})")
        z = t / (m.alpha + t)
        log_z = math.log(z)
        logs, signs = [0.0], [1.0]
        log_term = (m.a - 1.0) * math.log(m.alpha / (m.alpha + t))  # the terms at T = 0, prefactor included
        total = term = math.exp(log_term)
        n = 0
        while True:
            ratio = (a + n) * (b + n) / ((c + n) * (n + 1))
            if ratio == 0.0:  # the series ends: every later coefficient is 0
                break
            logs.append(logs[-1] + math.log(abs(ratio)))
            signs.append(signs[-1] if ratio > 0 else -signs[-1])
            log_term += math.log(abs(ratio)) + log_z
            term = signs[-1] * math.exp(log_term)
            total += term
            n += 1
            if n > -a and n > -b:
                rho = max(abs(ratio * z), z)
                if rho < 1.0 and abs(term) * rho <= _EPSILON * abs(total) * (1.0 - rho):
                    break
            if n >= _MAX_TERMS:
                raise ArithmeticError(f"clv forecast for x={x}: no convergence in {_MAX_TERMS} terms")
        self._logs, self._signs = np.array(logs), np.array(signs)
        self._degrees = np.arange(len(logs), dtype=np.float64)
        self._m, self._x, self._t = m, x, t
        self._scale = c / (m.a - 1.0)

    def expected(self, t_x: float, big_t: float) -> float:
        """E[Y(t) | x, t_x, T], equal to `expected_purchases(m, x, t_x, T, t)` to ~1e-15."""
        m, t = self._m, self._t
        horizon_end = m.alpha + big_t + t
        shift = (m.a - 1.0) * math.log((m.alpha + big_t) / horizon_end)
        exponents = self._logs + self._degrees * math.log(t / horizon_end) + shift
        bracket = 1.0 - float(self._signs @ np.exp(exponents))
        return self._scale * bracket / (1.0 + _odds_dead(m, self._x, t_x, big_t))


def expected_spend(g: GammaGamma, x: int, mean_spend: float) -> float:
    """E[Z | zbar, x] = p (gamma + x zbar) / (p x + q - 1): the spend per purchase to expect (requires q > 1).

    A weighted mean of the population mean pgamma/(q-1) and the customer's own mean zbar, the weight of zbar
    growing with the number of purchases x it was observed on.
    """
    return g.p * (g.gamma + x * mean_spend) / (g.p * x + g.q - 1.0)


def bgnbd_log_likelihood(m: BgNbd, x: int, t_x: float, big_t: float) -> float:
    """One customer's BG/NBD log-likelihood (eq. 6 of the paper), for checks against `clv_fit`."""
    r, alpha, a, b = m
    common = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha)
    beta_ab = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    stay = math.lgamma(a) + math.lgamma(b + x) - math.lgamma(a + b + x) - beta_ab
    total = math.exp(stay - (r + x) * math.log(alpha + big_t))
    if x > 0:
        drop = math.lgamma(a + 1) + math.lgamma(b + x - 1) - math.lgamma(a + b + x) - beta_ab
        total += math.exp(drop - (r + x) * math.log(alpha + t_x))
    return common + math.log(total)


def gamma_gamma_log_likelihood(g: GammaGamma, x: int, mean_spend: float) -> float:
    """Log density of the mean spend zbar over x >= 1 purchases under Gamma-Gamma (for checks)."""
    p, q, gamma = g
    px = p * x
    return (
        math.lgamma(px + q)
        - math.lgamma(px)
        - math.lgamma(q)
        + q * math.log(gamma)
        + px * math.log(x)
        + (px - 1) * math.log(mean_spend)
        - (px + q) * math.log(gamma + x * mean_spend)
    )
