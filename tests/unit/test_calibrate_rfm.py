"""`calibrate --grid rfm` proposals, checked as an analyst reads them: each score gets its share of buyers.

F = 1 + (breakpoints reached by orders), M and R alike: a breakpoint *equal* to a quantile value puts every
customer at that value in the upper score. Frequency is discrete and most buyers of a shop buy once, so the
1/5 quantile is 1 order, the breakpoint was 1, and nobody could score F = 1: one-time buyers became
`potential_loyalist` instead of `new`, and `new`, `promising` and `lost` of the classic map were empty.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from segmentation import CustomerState, Definitions
from streams.admin import calibrate


def _population(orders: list[int], monetary: list[str], recency: list[float]) -> calibrate.Population:
    return calibrate.Population(
        recency, orders, [Decimal(m) for m in monetary], datetime(2026, 6, 1, tzinfo=UTC)
    )


def _shares_below(values: list[float], points: list[float]) -> list[float]:
    """The share of the population scored below each breakpoint (value < breakpoint)."""
    ordered = sorted(values)
    return [bisect_right(ordered, p - 1e-9) / len(values) for p in points]


def test_one_time_buyers_score_f1() -> None:
    orders = [1] * 60 + [2] * 20 + [3] * 10 + [5] * 10
    population = _population(orders, ["25.00"] * 100, [float(d) for d in range(100)])
    proposal = calibrate.propose(population)
    assert proposal["frequency_orders"][0] == 2  # a single order is below the first breakpoint: F = 1
    doc = calibrate.new_document(calibrate.base_document(None), proposal, None)
    rfm = Definitions.from_mapping(doc).rfm
    assert 1 + bisect_right(rfm.frequency_orders, 1) == 1


@pytest.mark.parametrize("seed", range(3))
def test_each_breakpoint_has_at_least_its_share_below(seed: int) -> None:
    import random

    rng = random.Random(seed)
    orders = [min(1 + int(rng.expovariate(0.7)), 40) for _ in range(500)]
    money = [f"{rng.choice([9.99, 19.99, 49.99, 49.99, 120.0]) * o:.2f}" for o in orders]
    recency = [float(rng.randint(0, 400)) for _ in range(500)]  # whole days: ties on the quantiles
    proposal = calibrate.propose(_population(orders, money, recency))
    wanted = [0.2, 0.4, 0.6, 0.8]
    for values, points in (
        ([float(o) for o in orders], [float(p) for p in proposal["frequency_orders"]]),
        ([float(m) for m in money], [float(p) for p in proposal["monetary"]]),
        (recency, [float(p) for p in proposal["recency_days"]]),
    ):
        shares = _shares_below(values, points)
        assert all(s >= w - 1e-9 for s, w in zip(shares, wanted, strict=True)), (points, shares)


def test_a_base_currency_without_cents_gets_whole_breakpoints() -> None:
    """Base JPY (no minor unit): breakpoints in cents made the proposed file one `definitions apply` and
    calibrate itself refuse ("rfm.monetary[0]: 1234.5 has more decimals than the base currency", exit 2
    blaming the configuration)."""
    base = calibrate.base_document(None)
    base |= {"currency": "JPY", "currency_rates": {"EUR": "164"}, "max_amount": "100000000000"}
    base["rfm"] = {**base["rfm"], "monetary": ["5000", "15000", "40000", "100000"]}
    base["value"] = {"tiers": [{"segment": "none", "from": "0"}, {"segment": "some", "from": "1"}]}
    base["audiences"] = {}
    current = Definitions.from_mapping(base)
    money = [f"{1000 + 37.5 * i}" for i in range(200)]  # the population's net monetary as read: half yen too
    population = _population([1 + i % 7 for i in range(200)], money, [float(i) for i in range(200)])
    population.unit = Decimal(1).scaleb(-current.minor_exponent)
    proposal = calibrate.propose(population)
    new = Definitions.from_mapping(calibrate.new_document(base, proposal, None))
    assert all(m == m.to_integral_value() for m in new.rfm.monetary)


def test_a_customer_refunded_more_than_bought_counts_at_m_zero_as_the_core_scores_it() -> None:
    """M is net of refunds and never below 0 in the core (`monetary_minor`): calibrate takes the same
    figure, else customers refunded more than they bought pulled the money quantiles below zero."""
    at = datetime(2026, 5, 1, tzinfo=UTC)
    population = calibrate.Population([], [], [], datetime(2026, 6, 1, tzinfo=UTC), unit=Decimal("0.01"))
    bought = CustomerState.new("c1")._replace(orders=1, last_purchase_at=at, gross_minor=2_000)
    calibrate.count_in(population, bought._replace(refunded_minor=5_000))
    calibrate.count_in(population, bought)
    calibrate.count_in(population, CustomerState.new("c2"))  # no purchase: counted, not scored
    assert population.monetary == [Decimal("0.00"), Decimal("20.00")]
    assert (
        population.customers == 3 and population.orders == [1, 1] and population.recency_days == [31.0, 31.0]
    )
