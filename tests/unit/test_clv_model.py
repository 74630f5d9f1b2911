"""The BG/NBD and Gamma-Gamma closed forms against values computed independently.

Independent references: the paper's own worked value (CDNOW parameters), scipy's hyp2f1 in the formula
as printed (no Euler transformation), and numerical integration of the individual-level model over the
prior (scipy.integrate.quad): P(alive), E[Y(t)], the likelihoods and the expected spend are all ratios of
such integrals, which involve no hypergeometric function at all.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from scipy import integrate, special, stats

from segmentation import clv_fit
from segmentation.clv_model import (
    BgNbd,
    Forecast,
    GammaGamma,
    alive_crossing,
    bgnbd_log_likelihood,
    expected_purchases,
    expected_spend,
    gamma_gamma_log_likelihood,
    hyp2f1,
    p_alive,
)

Array = npt.NDArray[np.float64]
CDNOW = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)  # Fader, Hardie & Lee 2005, table 1
OTHER = BgNbd(r=1.2, alpha=9.0, a=1.6, b=4.0)
SPEND = GammaGamma(p=6.25, q=3.74, gamma=15.44)  # Fader, Hardie & Lee "RFM and CLV" (CDNOW spend)
HISTORIES = [
    (0, 0.0, 0.0),
    (0, 0.0, 30.0),
    (1, 5.0, 20.0),
    (2, 30.43, 38.86),
    (7, 35.0, 70.0),
    (25, 60.0, 61.0),
]


def test_the_papers_worked_example() -> None:
    """Fader, Hardie & Lee 2005, section 5: x=2, t_x=30.43, T=38.86 expects 1.226 purchases in 39 weeks."""
    assert round(expected_purchases(CDNOW, 2, 30.43, 38.86, 39.0), 3) == 1.226


@pytest.mark.parametrize(
    ("a", "b", "c", "z"),
    [(0.5, 1.5, 2.0, 0.3), (2.243, 4.426, 5.219, 0.9), (-0.207, -0.207, 3.2, 0.95), (3.0, -2.5, 1.5, 0.7),
     (1.0, 1.0, 2.0, 0.0), (30.2, 32.4, 61.2, 0.6), (-3.0, 2.0, 1.0, 0.5)],
)  # fmt: skip
def test_hyp2f1_series_matches_scipy(a: float, b: float, c: float, z: float) -> None:
    assert hyp2f1(a, b, c, z) == pytest.approx(float(special.hyp2f1(a, b, c, z)), rel=1e-12)


def test_hyp2f1_refuses_what_its_series_cannot_sum() -> None:
    for z, c in ((1.0, 2.0), (-0.1, 2.0), (0.5, 0.0)):
        with pytest.raises(ArithmeticError, match="0 <= z < 1"):
            hyp2f1(1.0, 1.0, c, z)
    with pytest.raises(ArithmeticError, match="no convergence"):
        hyp2f1(1.0, 1.0, 2.0, 1 - 1e-9)


@pytest.mark.parametrize("m", [CDNOW, OTHER])
@pytest.mark.parametrize(("x", "t_x", "big_t"), HISTORIES)
def test_expected_purchases_is_the_printed_formula(m: BgNbd, x: int, t_x: float, big_t: float) -> None:
    """Our Euler-transformed series against eq. 10 as printed, with scipy's 2F1."""
    r, alpha, a, b = m
    t = 52.0
    z = t / (alpha + big_t + t)
    bracket = 1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * special.hyp2f1(
        r + x, b + x, a + b + x - 1, z
    )
    dead = a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x) if x > 0 else 0.0
    printed = (a + b + x - 1) / (a - 1) * bracket / (1 + dead)
    assert expected_purchases(m, x, t_x, big_t, t) == pytest.approx(printed, rel=1e-11)


def _composite(hi: float, panels: int, order: int = 20) -> tuple[Array, Array]:
    """Nodes and weights of composite Gauss-Legendre quadrature on [0, hi], panels graded geometrically
    towards 0 (where the substituted integrands have fractional powers)."""
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.concatenate(
        [[0.0], np.geomspace(hi * 1e-12, hi / panels, 30), np.linspace(hi / panels, hi, panels)[1:]]
    )
    half = (edges[1:] - edges[:-1])[:, None] / 2
    nodes = (edges[:-1, None] + half * (x + 1)).ravel()
    return nodes, (half * w).ravel()


def _prior_integral(m: BgNbd, integrand: Callable[[Array, Array], Array]) -> float:
    """E over the prior lambda ~ Gamma(r, alpha), p ~ Beta(a, b) of integrand(lambda, p), by quadrature.

    Substitutions u = (alpha lambda)^r and s = p^a absorb the densities' powers (smooth integrands for
    Gauss-Legendre): the prior mass becomes e^(-alpha lambda) du / Gamma(r+1) and
    (1-p)^(b-1) ds / (a B(a, b)).
    """
    u, wu = _composite(80.0**m.r, 200)
    s, ws = _composite(1.0, 50)
    lam = u ** (1 / m.r) / m.alpha
    p = s ** (1 / m.a)
    weight_l = wu * np.exp(-m.alpha * lam - math.lgamma(m.r + 1))
    weight_p = ws * np.exp((m.b - 1) * np.log1p(-p) - math.log(m.a) - special.betaln(m.a, m.b))
    values = integrand(lam[:, None], p[None, :])
    return float(weight_l @ values @ weight_p)


@pytest.mark.parametrize(
    ("x", "t_x", "big_t"), [(0, 0.0, 10.0), (1, 5.0, 20.0), (2, 30.43, 38.86), (6, 20.0, 50.0)]
)
def test_alive_expected_purchases_and_likelihood_by_integration(x: int, t_x: float, big_t: float) -> None:
    """The individual model: alive with likelihood (1-p)^x l^x e^(-l T), dead after the last purchase with
    p (1-p)^(x-1) l^x e^(-l t_x); alive, it expects (1 - e^(-l p t))/p purchases in the next t weeks."""
    m, t = OTHER, 52.0

    def alive(lam: Array, p: Array) -> Array:
        return np.asarray((1 - p) ** x * lam**x * np.exp(-lam * big_t))

    def likelihood(lam: Array, p: Array) -> Array:
        dead = p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * t_x) if x > 0 else 0.0
        return alive(lam, p) + dead

    total = _prior_integral(m, likelihood)
    assert p_alive(m, x, t_x, big_t) == pytest.approx(_prior_integral(m, alive) / total, rel=1e-9)
    ahead = _prior_integral(m, lambda lam, p: alive(lam, p) * -np.expm1(-lam * p * t) / p) / total
    assert expected_purchases(m, x, t_x, big_t, t) == pytest.approx(ahead, rel=1e-9)
    assert bgnbd_log_likelihood(m, x, t_x, big_t) == pytest.approx(math.log(total), rel=1e-9)


def test_p_alive_is_one_without_repeat_purchase_and_falls_with_age() -> None:
    assert p_alive(CDNOW, 0, 0.0, 100.0) == 1.0
    ages = np.linspace(40.0, 300.0, 200)
    values = [p_alive(CDNOW, 3, 40.0, float(t)) for t in ages]
    assert all(b < a for a, b in itertools.pairwise(values))


@pytest.mark.parametrize("threshold", [0.9, 0.5, 0.1, 0.01])
def test_alive_crossing_solves_the_threshold(threshold: float) -> None:
    t = alive_crossing(CDNOW, 4, 12.0, threshold)
    assert t is not None
    assert p_alive(CDNOW, 4, 12.0, t) == pytest.approx(threshold, rel=1e-12)


def test_alive_crossing_none_when_never_reached() -> None:
    assert alive_crossing(CDNOW, 0, 0.0, 0.5) is None  # stays 1
    assert alive_crossing(CDNOW, 3, 10.0, 1.0) is None
    assert alive_crossing(CDNOW, 3, 10.0, 0.0) is None


@pytest.mark.parametrize(("x", "mean"), [(1, 10.0), (3, 35.5), (12, 120.0)])
def test_gamma_gamma_by_integration_over_nu(x: int, mean: float) -> None:
    """zbar | nu ~ Gamma(p x, rate nu x), nu ~ Gamma(q, rate gamma); a purchase spends p/nu on average."""
    g = SPEND
    shape = g.p * x

    def density(nu: float) -> float:  # Gamma(shape, rate nu x) at zbar times the Gamma(q, rate gamma) prior
        log_f = shape * math.log(nu * x) + (shape - 1) * math.log(mean) - nu * x * mean - math.lgamma(shape)
        log_g = g.q * math.log(g.gamma) + (g.q - 1) * math.log(nu) - g.gamma * nu - math.lgamma(g.q)
        return math.exp(log_f + log_g)

    top = float(stats.gamma(g.q, scale=1 / g.gamma).ppf(1 - 1e-15))
    evidence, _ = integrate.quad(density, 0, top, epsabs=0, epsrel=1e-11, limit=400)
    spend, _ = integrate.quad(lambda nu: g.p / nu * density(nu), 0, top, epsabs=0, epsrel=1e-11, limit=400)
    assert gamma_gamma_log_likelihood(g, x, mean) == pytest.approx(math.log(evidence), rel=1e-8)
    assert expected_spend(g, x, mean) == pytest.approx(spend / evidence, rel=1e-7)


def test_vectorised_likelihoods_of_the_fit_agree_with_the_scalar_ones() -> None:
    xs = np.array([h[0] for h in HISTORIES], dtype=float)
    t_x = np.array([h[1] for h in HISTORIES])
    big_t = np.array([h[2] for h in HISTORIES])
    vector = clv_fit.bgnbd_log_likelihood(CDNOW, xs, t_x, big_t)
    assert vector == pytest.approx([bgnbd_log_likelihood(CDNOW, *h) for h in HISTORIES], rel=1e-12)
    spends = np.array([5.0, 17.5, 300.0])
    counts = np.array([1.0, 4.0, 9.0])
    gg = clv_fit.gamma_gamma_log_likelihood(SPEND, counts, spends)
    scalar = [
        gamma_gamma_log_likelihood(SPEND, int(n), float(z)) for n, z in zip(counts, spends, strict=True)
    ]
    assert gg == pytest.approx(scalar, rel=1e-12)


@pytest.mark.parametrize("m", [CDNOW, OTHER])
@pytest.mark.parametrize(("x", "t_x", "big_t"), HISTORIES)
def test_the_precomputed_forecast_is_the_series(m: BgNbd, x: int, t_x: float, big_t: float) -> None:
    forecast = Forecast(m, x, 365 / 7)
    assert forecast.expected(t_x, big_t) == pytest.approx(
        expected_purchases(m, x, t_x, big_t, 365 / 7), rel=1e-13
    )


def test_a_forecast_that_cannot_converge_is_refused() -> None:
    """alpha near 0 puts z = t/(alpha+t) at 1 - 2e-11 for a new customer: the series needs ~1e12 terms."""
    with pytest.raises(ArithmeticError, match="no convergence"):
        Forecast(BgNbd(0.5, 1e-9, 0.8, 2.0), 0, 52.0)
    with pytest.raises(ArithmeticError, match="a \\+ b > 1"):
        Forecast(BgNbd(0.5, 3.0, 0.5, 0.3), 0, 52.0)


def test_a_forecast_whose_first_terms_change_sign() -> None:
    """a + b - 1 - r < 0: the first coefficients alternate in sign before the tail bound applies."""
    m = BgNbd(r=2.0, alpha=3.0, a=0.5, b=0.8)
    for x, t_x, big_t in HISTORIES:
        expected = expected_purchases(m, x, t_x, big_t, 20.0)
        assert Forecast(m, x, 20.0).expected(t_x, big_t) == pytest.approx(expected, rel=1e-12)
