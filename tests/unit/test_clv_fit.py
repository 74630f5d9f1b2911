"""Maximum likelihood recovers the parameters of simulated BG/NBD and Gamma-Gamma populations."""

from __future__ import annotations

import warnings
from decimal import Decimal

import numpy as np
import pytest

from segmentation.clv_fit import (
    FitError,
    Population,
    bgnbd_log_likelihood,
    fit_bgnbd,
    fit_gamma_gamma,
    population_at,
    propose_tiers,
)
from segmentation.clv_model import BgNbd, Forecast, GammaGamma
from tests.unit.clv_simulation import simulate
from tests.unit.seg_helpers import DEFAULT, day, ev, purchase, refund, run

TRUE_BGNBD = BgNbd(r=1.0, alpha=5.0, a=1.5, b=3.0)
TRUE_SPEND = GammaGamma(p=3.0, q=8.0, gamma=100.0)


@pytest.fixture(scope="module")
def population() -> Population:
    return simulate(TRUE_BGNBD, TRUE_SPEND, customers=50_000, seed=7, weeks=(52.0, 156.0))


def test_bgnbd_parameters_recovered_within_5_percent_on_50k_customers(population: Population) -> None:
    fitted = fit_bgnbd(population)
    assert fitted == pytest.approx(TRUE_BGNBD, rel=0.05)
    # and the optimum is one: at least as likely as the true parameters
    x, t_x, big_t = population.x, population.t_x, population.big_t
    assert (
        bgnbd_log_likelihood(fitted, x, t_x, big_t).sum()
        >= bgnbd_log_likelihood(TRUE_BGNBD, x, t_x, big_t).sum()
    )


def test_gamma_gamma_parameters_recovered_within_5_percent(population: Population) -> None:
    assert fit_gamma_gamma(population) == pytest.approx(TRUE_SPEND, rel=0.05)


def test_too_little_data_is_refused_in_one_line() -> None:
    few = Population.of([1, 0, 2], [3.0, 0.0, 5.0], [10.0, 10.0, 10.0], [5.0, 0.0, 7.0])
    with pytest.raises(FitError, match="at least 10 customers"):
        fit_bgnbd(few)
    with pytest.raises(FitError, match="at least 10 repeat buyers"):
        fit_gamma_gamma(few)
    no_repeat = Population.of([0] * 20, [0.0] * 20, [10.0] * 20, [5.0] * 20)
    with pytest.raises(FitError, match="one repeat buyer"):
        fit_bgnbd(no_repeat)
    with pytest.raises(FitError, match="one value per customer"):
        Population.of([1], [1.0, 2.0], [3.0], [4.0])


def test_a_likelihood_without_finite_optimum_is_refused() -> None:
    """Times that are not numbers: the BG/NBD likelihood is not finite anywhere."""
    unknown = Population.of([3] * 50, [np.nan] * 50, [20.0] * 50, [30.0] * 50)
    with pytest.raises(FitError, match="could not be maximised"):
        fit_bgnbd(unknown)


def test_infinite_spends_are_refused_by_name() -> None:
    """Infinite spends: no unit of money to fit in and no finite likelihood; said as such, with no warning."""
    endless = Population.of([3] * 50, [10.0] * 50, [20.0] * 50, [np.inf] * 49 + [30.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FitError, match="49 of 50 repeat buyers have a mean spend that is not finite"):
            fit_gamma_gamma(endless)


def test_tiers_are_quantiles_rounded_up_and_strictly_ascending() -> None:
    """Quantiles are values of the population (inverted CDF) rounded up to the cent; a tie moves a cent up."""
    clv = [0.0] * 50 + [12.341] * 30 + [80.0] * 15 + [400.0] * 5
    assert propose_tiers(clv, [0.5, 0.6, 0.7, 0.9], Decimal("0.01")) == [
        Decimal(0), Decimal("0.01"), Decimal("12.35"), Decimal("12.36"), Decimal("80.00")
    ]  # fmt: skip
    with pytest.raises(FitError, match="no customer"):
        propose_tiers([], [0.5], Decimal("0.01"))


def test_calibration_inputs_are_read_from_states_at_the_calibration_end() -> None:
    buyer, _ = run([purchase(day(0), "30.00"), purchase(day(7), "50.00"), refund(day(8), "20.00")])
    browser, _ = run([ev("web_visit", day(1))])
    later, _ = run([purchase(day(30), "10.00")])
    population = population_at([buyer, browser, later], day(14), DEFAULT.scale)
    assert population.x.tolist() == [1.0] and population.t_x.tolist() == [1.0]
    assert population.big_t.tolist() == [2.0] and population.mean_spend.tolist() == [30.0]  # (80 - 20) / 2
    assert len(population_at([browser], day(14), DEFAULT.scale).x) == 0


def test_data_without_spread_gets_bounded_parameters_whose_forecast_converges() -> None:
    """One rhythm and one price for everyone: no finite optimum, so the parameters end at their bounds
    (shapes 10^4), not where the optimiser stopped (r = 10^40 with scipy 1.17.1, which definitions refuse)"""
    rhythm = Population.of([5] * 50, [21.4] * 50, [25.0] * 50, [40.0] * 50)  # a purchase every 30 days
    bgnbd, spend = fit_bgnbd(rhythm), fit_gamma_gamma(rhythm)
    assert all(1e-8 <= v <= 1e4 * 1.000001 for v in (bgnbd.r, bgnbd.a, bgnbd.b, spend.p, spend.q))
    assert all(1e-8 <= v <= 1e8 * 1.000001 for v in (bgnbd.alpha, spend.gamma))
    assert bgnbd.r / bgnbd.alpha == pytest.approx(5 / 25.0, rel=0.05)  # the common rate: x / T per week
    assert Forecast(bgnbd, 5, 52).expected(21.4, 25.0) >= 0


@pytest.mark.parametrize("unit", [1.0, 25_000.0, 1e-3])
def test_gamma_gamma_gives_the_same_model_in_any_money_unit(population: Population, unit: float) -> None:
    """Spend in dong instead of euros: p and q the same, gamma times the unit (the fit stopped at its start
    point with spends 25,000 times larger: a mean spend of 10 against 3,015 in the data, 7 December)"""
    scaled = Population(population.x, population.t_x, population.big_t, population.mean_spend * unit)
    base, fitted = fit_gamma_gamma(population), fit_gamma_gamma(scaled)
    assert fitted.p == pytest.approx(base.p, rel=1e-3) and fitted.q == pytest.approx(base.q, rel=1e-3)
    assert fitted.gamma == pytest.approx(base.gamma * unit, rel=1e-3)
