"""Customer behaviour for the synthetic generator: latent personas driving a discrete-event simulation.

Why a discrete-event simulation: each customer runs several processes at once (orders, campaign emails,
web visits, app sessions) and follow-ups hang off them (opens after sends, refunds after orders). One heap of
*scheduled actions* for the whole population orders them all by event time, so events come out globally
sorted while memory stays O(customers), never O(events): a follow-up is just an action pushed at a later
time, and an action popped from the heap can only schedule at or after its own time.

Why one ``random.Random`` consumed in heap order: the heap order is a total order (time, then a sequence
number), so the draws, and therefore every byte of output, are a function of the seed and the spec only.

The parts, one concept each: who the customers are (:mod:`streams.sample.personas`), the queue and event
stamping (:mod:`streams.sample.schedule`), purchases and their follow-ups (:mod:`streams.sample.purchases`),
emails, visits and app sessions (:mod:`streams.sample.engagement`). :class:`Simulation` joins them with
each customer's own life: joining, declaring a profile, asking to be erased.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime
from typing import Final

from streams.sample.engagement import Engagement
from streams.sample.personas import PERSONA_CUM, PERSONAS, Customer, Persona
from streams.sample.purchases import Purchases
from streams.sample.schedule import DAY, K_APP, K_EMAIL, K_ERASE, K_JOIN, K_PROFILE, K_SHOP, K_WEB, Event

__all__ = ["PERSONAS", "REGIONS", "Event", "Persona", "Simulation"]

# ISO 3166 codes, as a CRM would hold them; the default definitions group them into north/west/south/east.
REGIONS: Final = ("FR", "DE", "ES", "IT", "SE", "PL", "NL", "GB", "FI", "US")
_REGION_WEIGHTS: Final = (0.16, 0.18, 0.12, 0.11, 0.06, 0.08, 0.07, 0.12, 0.03, 0.07)
_GENDERS: Final = ("female", "male", "other", "undisclosed")
_GENDER_WEIGHTS: Final = (0.49, 0.46, 0.02, 0.03)


class Simulation(Purchases, Engagement):
    """Yields ``(customer_id, event)`` in non-decreasing event time; see the module docstring for why."""

    def __init__(
        self,
        *,
        customers: int,
        days: int,
        start: datetime,
        seed: int,
        currency: str,
        currency_exponent: int,
        erasure_share: float,
    ) -> None:
        super().__init__(days=days, start=start, seed=seed)
        self.currency = currency
        self.minor = 10**currency_exponent
        self.exponent = currency_exponent
        self._campaigns, self._campaign_ids = self._campaign_calendar(start, days)
        self._handlers = (
            self._join, self._shop, self._order_action, self._email, self._open, self._click, self._unsub,
            self._web, self._visit, self._app, self._loyalty, self._refund, self._survey, self._support,
            self._profile, self._erase,
        )  # fmt: skip
        self._populate(customers, erasure_share)

    def _populate(self, customers: int, erasure_share: float) -> None:
        """Draw each customer's persona and schedule its joining (and erasure); profiles override this."""
        rng = self.rng
        span = self.end - self.origin
        for index in range(customers):
            persona = PERSONAS[bisect.bisect_left(PERSONA_CUM, rng.random() * PERSONA_CUM[-1])]
            c = Customer(index, persona)
            self._customers.append(c)
            # 60% were already customers when the period starts; the others sign up during it.
            c.new = rng.random() >= 0.6
            join = self.origin + (int(rng.random() * span) if c.new else 0)
            self._schedule(join, index, K_JOIN, None)
            if rng.random() < erasure_share:
                erase_at = join + int(rng.random() * (self.end - join))
                self._schedule(erase_at, index, K_ERASE, None)

    # -- the customer's own life: joining, declaring a profile, asking for erasure ---------------------

    def _join(self, c: Customer, t: int, _: object) -> Event | None:
        """Draw the customer's individual traits and start its processes; a sign-up is a web visit."""
        rng, p = self.rng, c.persona
        c.gap = p.purchase_gap_days * rng.lognormvariate(0.0, 0.4)
        weights = [w * rng.lognormvariate(0.0, 0.5) for w in p.channels]
        total = sum(weights)
        c.channel_cum = tuple(sum(weights[: i + 1]) / total for i in range(len(weights)))
        c.email_ok = rng.random() < 0.85
        c.app_user = rng.random() < p.app_share
        c.member = rng.random() < p.loyalty_share
        engagement = rng.lognormvariate(0.0, 0.35)
        c.open_p = min(0.95, p.open_p * engagement)
        c.click_p = min(0.9, p.click_p * engagement)
        c.unsub_p = p.unsubscribe_p
        c.web_gap = p.web_gap_days * rng.lognormvariate(0.0, 0.5)
        c.app_gap = c.web_gap * 0.7
        c.send_offset = int(rng.random() * 7200)  # a campaign goes out over two hours
        span = self.end - t
        if p.churns:
            # Churners stop ordering 10-50% into their remaining time: lifecycle must see at_risk then lost.
            c.churn_at = t + int(span * (0.1 + 0.4 * rng.random()))
            if rng.random() < 0.25:  # a quarter are won back once, 100-240 days later (reactivated)
                self._push(c.churn_at + int((100 + 140 * rng.random()) * DAY), c, K_SHOP, True)
        if p.orders == "repeat":
            self._push(self._at_active_hour(t, c.gap if not c.new else min(c.gap, 10.0)), c, K_SHOP)
        elif p.orders == "once":
            when = self._at_active_hour(t, 5.0) if c.new else t + int(rng.random() * span)
            self._push(when, c, K_SHOP)
        if c.email_ok:
            index = bisect.bisect_right(self._campaigns, t - c.send_offset)
            if index < len(self._campaigns):
                self._push(self._campaigns[index] + c.send_offset, c, K_EMAIL, index)
        self._push(self._at_active_hour(t, c.web_gap), c, K_WEB)
        if c.app_user:
            self._push(self._at_active_hour(t, c.app_gap), c, K_APP)
        if rng.random() < 0.6:  # most customers declare a profile early on
            self._push(t + 60 + int(rng.random() * 14 * DAY), c, K_PROFILE, True)
            if rng.random() < 0.1:
                self._push(t + int(rng.random() * span), c, K_PROFILE, False)
        if not c.new:
            return None
        event = self._event(c, t, "web_visit")
        event["page"] = "/signup"
        return event

    def _profile(self, c: Customer, t: int, first: object) -> Event | None:
        """Declared data; each field is sometimes left out (which means "unchanged", per the contract)."""
        rng = self.rng
        event = self._event(c, t, "profile_update")
        year = datetime.fromtimestamp(t, UTC).year
        if first is True:
            if rng.random() < 0.9:
                event["birth_year"] = year - int(rng.triangular(18, 88, 36))
            if rng.random() < 0.8:
                event["gender"] = rng.choices(_GENDERS, _GENDER_WEIGHTS)[0]
        if rng.random() < 0.85:
            event["region"] = rng.choices(REGIONS, _REGION_WEIGHTS)[0]
        if rng.random() < 0.5:
            event["household"] = rng.choices((1, 2, 3, 4, 5, 6), (0.3, 0.33, 0.15, 0.14, 0.06, 0.02))[0]
        return event

    def _erase(self, c: Customer, t: int, _: object) -> Event | None:
        event = self._event(c, t, "customer_erased")
        c.erased = True  # set after building: this event is the customer's last one
        return event
