"""The order-history profile: what an adopter imports first, an 18-month export of orders.

Why a profile of its own: the default sample is engagement-heavy (~120 events per customer, most customers
known for the whole period), which hides what an import costs. An order export is the opposite shape: most
customers appear during the period with their first order, buy a few times (~3 on average, long-tailed: many
once, a few dozen times) and lapse; nearly every event is a purchase, with some refunds and a little
engagement (a newsletter now and then, surveys and support contacts after orders, declared profiles). Every
purchase of a new customer moves many grids at once, so cost per event is dominated by transitions.

It reuses the simulation's machinery and its purchase process (items with the default categories' SKU
prefixes, channels, coupons, refunds); only the population and the joining differ.
"""

from __future__ import annotations

import bisect
from typing import Final

from streams.sample.behaviour import Simulation
from streams.sample.personas import Customer, Persona
from streams.sample.schedule import DAY, K_EMAIL, K_ERASE, K_JOIN, K_PROFILE, K_SHOP, Event

__all__ = ["ORDER_HISTORY_DAYS", "ORDER_PERSONAS", "OrderHistory"]

ORDER_HISTORY_DAYS: Final = 548  # 18 months

#        name          share  orders    gap  basket channels (web, store, app, phone)  coupon
#        open  click  unsub   web_gap  app   loyalty  satisfaction  churns
ORDER_PERSONAS: Final = (
    Persona("one_off",    0.42, "once",     0, 45, (0.60, 0.30, 0.08, 0.02), 0.30,
            0.10, 0.10, 0.010,  0, 0.0, 0.0, 6.2),
    Persona("occasional", 0.30, "repeat", 110, 40, (0.55, 0.30, 0.10, 0.05), 0.25,
            0.18, 0.12, 0.004,  0, 0.0, 0.0, 6.8, churns=True),
    Persona("regular",    0.22, "repeat",  45, 55, (0.45, 0.35, 0.15, 0.05), 0.15,
            0.30, 0.18, 0.002,  0, 0.0, 0.0, 7.6, churns=True),
    Persona("loyal",      0.06, "repeat",  25, 70, (0.40, 0.35, 0.22, 0.03), 0.10,
            0.45, 0.25, 0.001,  0, 0.0, 0.0, 8.6),
)  # fmt: skip
_PERSONA_CUM: Final = tuple(sum(p.share for p in ORDER_PERSONAS[: i + 1]) for i in range(len(ORDER_PERSONAS)))
_KNOWN_SHARE: Final = 0.25  # customers who already bought before the export starts
_LIFETIME_DAYS: Final = 180.0  # mean time a lapsing (churns=True) customer keeps buying after joining
_EMAIL_SHARE: Final = 0.1  # customers whose newsletter activity is in the export
_PROFILE_SHARE: Final = 0.15  # customers with declared data (region, birth year) in the export


class OrderHistory(Simulation):
    """The order-history profile's population and joining; see the module docstring for the shape."""

    targeted_share = 0.02  # ~3 newsletters per subscribed customer over 18 months, not two a week

    def _populate(self, customers: int, erasure_share: float) -> None:
        rng = self.rng
        span = self.end - self.origin
        for index in range(customers):
            persona = ORDER_PERSONAS[bisect.bisect_left(_PERSONA_CUM, rng.random() * _PERSONA_CUM[-1])]
            c = Customer(index, persona)
            self._customers.append(c)
            # Most customers are new: their first order falls somewhere in the period (growth is flat).
            c.new = rng.random() >= _KNOWN_SHARE
            join = self.origin + (int(rng.random() * span) if c.new else 0)
            self._schedule(join, index, K_JOIN, None)
            if rng.random() < erasure_share:
                self._schedule(join + int(rng.random() * (self.end - join)), index, K_ERASE, None)

    def _join(self, c: Customer, t: int, _: object) -> Event | None:
        """Draw the customer's traits; a new customer's first order comes within hours, a known one later."""
        rng, p = self.rng, c.persona
        c.gap = p.purchase_gap_days * rng.lognormvariate(0.0, 0.5)
        weights = [w * rng.lognormvariate(0.0, 0.5) for w in p.channels]
        total = sum(weights)
        c.channel_cum = tuple(sum(weights[: i + 1]) / total for i in range(len(weights)))
        c.email_ok = rng.random() < _EMAIL_SHARE
        engagement = rng.lognormvariate(0.0, 0.35)
        c.open_p = min(0.95, p.open_p * engagement)
        c.click_p = min(0.9, p.click_p * engagement)
        c.unsub_p = p.unsubscribe_p
        c.send_offset = int(rng.random() * 7200)
        span = self.end - t
        if p.churns:  # lapsing customers: at_risk, then lost, if the period lasts long enough
            c.churn_at = t + int(rng.expovariate(1.0 / _LIFETIME_DAYS) * DAY)
        if c.new:
            first = self._at_active_hour(t, 0.3)
        elif p.orders == "repeat":
            first = self._at_active_hour(t, c.gap)
        else:
            first = t + int(rng.random() * span)
        self._push(first, c, K_SHOP)
        if c.email_ok:
            index = bisect.bisect_right(self._campaigns, t - c.send_offset)
            if index < len(self._campaigns):
                self._push(self._campaigns[index] + c.send_offset, c, K_EMAIL, index)
        if rng.random() < _PROFILE_SHARE:
            self._push(first + 60 + int(rng.random() * 3 * DAY), c, K_PROFILE, True)
        return None

    def _shop(self, c: Customer, t: int, winback: object) -> Event | None:
        """An order straight away (an export holds orders, not the visits before them); then the next."""
        rng, p = self.rng, c.persona
        if t >= c.churn_at and c.orders > 0:
            return None  # lapsed: the purchase process stops for good
        if p.orders == "repeat":
            self._push(self._at_active_hour(t, c.gap), c, K_SHOP)
        channel = min(bisect.bisect_left(c.channel_cum, rng.random()), 3)
        return self._order(c, t, channel)
