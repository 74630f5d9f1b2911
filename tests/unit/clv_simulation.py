"""The BG/NBD and Gamma-Gamma generative processes, simulated with numpy (for parameter-recovery tests)."""

from __future__ import annotations

import numpy as np

from segmentation.clv_fit import Population
from segmentation.clv_model import BgNbd, GammaGamma


def simulate(
    m: BgNbd, g: GammaGamma, customers: int, seed: int, weeks: tuple[float, float] = (26.0, 104.0)
) -> Population:
    """Customers whose first purchase is at 0 and who are observed for T ~ U(weeks) weeks.

    While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each repeat purchase they
    drop out with probability p ~ Beta(a, b). Each purchase spends Gamma(p, nu), nu ~ Gamma(q, gamma): the
    mean of x purchases is Gamma(p x, nu x), drawn directly.
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(m.r, 1.0 / m.alpha, customers)
    drop = rng.beta(m.a, m.b, customers)
    big_t = rng.uniform(weeks[0], weeks[1], customers)
    x = np.zeros(customers)
    t_x = np.zeros(customers)
    clock = np.zeros(customers)
    alive = np.ones(customers, dtype=bool)
    while alive.any():
        index = np.flatnonzero(alive)
        clock[index] += rng.exponential(1.0 / rate[index])
        bought = clock[index] <= big_t[index]
        buyers = index[bought]
        x[buyers] += 1
        t_x[buyers] = clock[buyers]
        alive[index[~bought]] = False
        alive[buyers[rng.random(len(buyers)) < drop[buyers]]] = False
    nu = rng.gamma(g.q, 1.0 / g.gamma, customers)
    spend = np.where(x > 0, rng.gamma(g.p * np.maximum(x, 1), 1.0 / (nu * np.maximum(x, 1))), 0.0)
    return Population(x, t_x, big_t, spend)
