"""Purchase behaviour: intentions to buy, orders, and what follows (points, refunds, surveys, support)."""

from __future__ import annotations

import bisect
import math
import zlib
from typing import Final, cast

from streams.sample.personas import Customer
from streams.sample.schedule import (
    DAY,
    K_LOYALTY,
    K_ORDER,
    K_REFUND,
    K_SHOP,
    K_SUPPORT,
    K_SURVEY,
    Event,
    Schedule,
)

__all__ = ["Purchases"]

_CHANNELS: Final = ("web", "store", "app", "phone")
_SUPPORT_CHANNELS: Final = ("email", "phone", "chat", "store")
_INTERESTS: Final = ("fashion", "sport", "home", "beauty", "kids", "garden", "tech", "travel", "food")
_TIERS: Final = ((2000, "gold"), (500, "silver"), (0, "bronze"))


class Purchases(Schedule):
    """The purchase process of a customer and its follow-ups, as actions of the simulation."""

    currency: str  # these three are set by the simulation
    minor: int  # 10 ** exponent: minor units per major unit
    exponent: int

    def _money(self, minor: int) -> str:
        """Minor units -> exact decimal text with the currency's number of places (strings, never floats)."""
        if self.exponent == 0:
            return str(minor)
        whole, fraction = divmod(minor, self.minor)
        return f"{whole}.{fraction:0{self.exponent}d}"

    def _shop(self, c: Customer, t: int, winback: object) -> Event | None:
        """An intention to buy: online, a visit or app session comes first and the order minutes later."""
        rng, p = self.rng, c.persona
        if t >= c.churn_at and winback is not True:
            return None  # churned: the purchase process stops for good
        if p.orders == "repeat" and winback is not True:
            self._push(self._at_active_hour(t, c.gap), c, K_SHOP)
        channel = bisect.bisect_left(c.channel_cum, rng.random())
        channel = min(channel, 3)
        if channel == 0:
            event = self._event(c, t, "web_visit")
            event["page"] = f"/product/sku-{int(5000 * rng.random() ** 3):05d}"
        elif channel == 2:
            event = self._event(c, t, "app_session")
            event["duration_seconds"] = 120 + int(rng.lognormvariate(5.5, 0.7))
        else:
            return self._order(c, t, channel)
        self._push(t + 60 + int(rng.random() * 1500), c, K_ORDER, channel)
        return event

    def _order_action(self, c: Customer, t: int, channel: object) -> Event | None:
        return self._order(c, t, channel if isinstance(channel, int) else 0)

    def _order(self, c: Customer, t: int, channel: int) -> Event:
        """A purchase with items priced lognormally; schedules its loyalty points, refund, survey, support."""
        rng, p, minor = self.rng, c.persona, self.minor
        c.orders += 1
        order_id = f"{c.cid}-o{c.orders}"
        item_median = math.log(max(p.basket_median, 5.0) / 1.7)
        count = 1 + min(int(rng.expovariate(1.2)), 7)
        items: list[dict[str, object]] = []
        total = 0
        for _ in range(count):
            price = max(1, round(rng.lognormvariate(item_median, 0.6))) * minor - (1 if minor > 1 else 0)
            quantity = 1 if rng.random() < 0.82 else 2 + int(rng.random() * 2)
            total += price * quantity
            sku = _sku(c.cid, int(5000 * rng.random() ** 3))
            items.append({"sku": sku, "quantity": quantity, "unit_price": self._money(price)})
        coupon = rng.random() < p.coupon_p
        amount = total * 9 // 10 if coupon else total  # a 10% coupon on the order total
        event = self._event(c, t, "purchase")
        event.update(
            order_id=order_id,
            amount=self._money(amount),
            currency=self.currency,
            channel=_CHANNELS[channel],
            items=items,
            coupon_used=coupon,
        )
        if c.member:
            self._push(t + 5 + int(rng.random() * 120), c, K_LOYALTY, amount // minor)
            if c.points >= 1000 and rng.random() < 0.2:
                self._push(t + 2, c, K_LOYALTY, -500)  # points redeemed at checkout
        refund_p = 0.06 if channel == 0 else 0.03
        if rng.random() < refund_p:
            part = amount if rng.random() < 0.55 else max(1, int(amount * (0.1 + 0.5 * rng.random())))
            self._push(t + int((2 + 28 * rng.random()) * DAY), c, K_REFUND, (order_id, part))
        if rng.random() < 0.06:
            self._push(t + int((1 + 2 * rng.random()) * DAY), c, K_SURVEY, 0)
        if rng.random() < 0.03:
            self._push(t + int((0.2 + 9 * rng.random()) * DAY), c, K_SUPPORT)
        return event

    def _loyalty(self, c: Customer, t: int, delta: object) -> Event | None:
        """Points earned (1 per major unit) or redeemed; the tier is sent only when it changes."""
        assert isinstance(delta, int)
        c.points = max(0, c.points + delta)
        event = self._event(c, t, "loyalty")
        event["points_delta"] = delta
        tier = next(name for floor, name in _TIERS if c.points >= floor)
        if tier != c.tier and delta > 0:
            c.tier = event["tier"] = tier
        return event

    def _refund(self, c: Customer, t: int, payload: object) -> Event | None:
        order_id, amount = cast(tuple[str, int], payload)
        event = self._event(c, t, "refund")
        event.update(order_id=order_id, amount=self._money(amount), currency=self.currency)
        return event

    def _survey(self, c: Customer, t: int, shift: object) -> Event | None:
        assert isinstance(shift, int)
        rng = self.rng
        score = round(rng.gauss(c.persona.satisfaction + shift, 1.8))
        event = self._event(c, t, "survey_response")
        event["score"] = min(10, max(0, score))
        if rng.random() < 0.5:
            event["interests"] = sorted(rng.sample(_INTERESTS, 1 + int(rng.random() * 3)))
        return event

    def _support(self, c: Customer, t: int, _: object) -> Event | None:
        rng = self.rng
        resolved = rng.random() < 0.85
        event = self._event(c, t, "support_contact")
        event["channel"] = rng.choices(_SUPPORT_CHANNELS, (0.35, 0.3, 0.25, 0.1))[0]
        event["resolved"] = resolved
        if rng.random() < 0.3:  # satisfaction after a contact, lower when the problem stayed open
            self._push(t + int((0.5 + rng.random()) * DAY), c, K_SURVEY, 0 if resolved else -3)
        return event


# SKU prefixes of the default definitions' categories (`category.sku_prefixes`): shoes, apparel, accessories,
# home, beauty.
_PREFIXES = ("SH-", "AP-", "AC-", "HM-", "BT-")


def _sku(customer_id: str, number: int) -> str:
    """A SKU whose prefix names a category: ~70 % from the customer's favourite one, so the category grid has
    dominant buyers and mixed ones. Derived from the item number: the random stream stays as it was."""
    favourite = zlib.crc32(customer_id.encode()) % len(_PREFIXES)
    prefix = _PREFIXES[favourite] if number % 10 < 7 else _PREFIXES[number % len(_PREFIXES)]
    return f"{prefix}{number:05d}"
