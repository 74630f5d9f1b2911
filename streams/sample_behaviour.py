"""Customer behaviour for the synthetic generator: latent personas driving a discrete-event simulation.

Why a discrete-event simulation: each customer runs several processes at once (orders, campaign emails,
web visits, app sessions) and follow-ups hang off them (opens after sends, refunds after orders). One heap of
*scheduled actions* for the whole population orders them all by event time, so events come out globally
sorted while memory stays O(customers), never O(events): a follow-up is just an action pushed at a later
time, and an action popped from the heap can only schedule at or after its own time.

Why one ``random.Random`` consumed in heap order: the heap order is a total order (time, then a sequence
number), so the draws, and therefore every byte of output, are a function of the seed and the spec only.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, cast

__all__ = ["PERSONAS", "REGIONS", "Persona", "Simulation"]

DAY: Final = 86_400
# ISO 3166 codes, as a CRM would hold them; the default definitions group them into north/west/south/east.
REGIONS: Final = ("FR", "DE", "ES", "IT", "SE", "PL", "NL", "GB", "FI", "US")
_REGION_WEIGHTS: Final = (0.16, 0.18, 0.12, 0.11, 0.06, 0.08, 0.07, 0.12, 0.03, 0.07)
_GENDERS: Final = ("female", "male", "other", "undisclosed")
_GENDER_WEIGHTS: Final = (0.49, 0.46, 0.02, 0.03)
_CHANNELS: Final = ("web", "store", "app", "phone")
_SUPPORT_CHANNELS: Final = ("email", "phone", "chat", "store")
_INTERESTS: Final = ("fashion", "sport", "home", "beauty", "kids", "garden", "tech", "travel", "food")
_PAGES: Final = ("/", "/search", "/cart", "/account", "/offers", "/stores", "/category/new", "/category/sale")
_TIERS: Final = ((2000, "gold"), (500, "silver"), (0, "bronze"))
_CAMPAIGN_WEEKDAYS: Final = (1, 4)  # Tuesday and Friday newsletters, as most retail CRMs run them
_CAMPAIGN_HOUR: Final = 9
_TARGETED_SHARE: Final = 0.75  # share of a campaign's sends a subscribed customer actually receives


def _hour_table(weights: tuple[float, ...]) -> tuple[int, ...]:
    """A 1,000-slot lookup table of hours drawn in proportion to ``weights``: one random() per draw."""
    total = sum(weights)
    table: list[int] = []
    for hour, weight in enumerate(weights):
        table += [hour] * round(1000 * weight / total)
    return tuple(table)


# People shop and browse in the day, with a lunch bump and an evening peak (UTC taken as local time).
_ACTIVE_HOURS: Final = _hour_table(
    (0.6, 0.3, 0.2, 0.15, 0.15, 0.3, 1, 2, 3, 4, 5, 6, 7, 6, 5, 5, 6, 7, 8, 9, 8, 6, 4, 2)
)


@dataclass(frozen=True, slots=True)
class Persona:
    """A latent customer type: the generator never emits it, segmentation has to rediscover it."""

    name: str
    share: float
    orders: str  # "repeat", "once" or "never"
    purchase_gap_days: float  # mean days between orders (exponential), before an individual multiplier
    basket_median: float  # median basket in major currency units (lognormal)
    channels: tuple[float, float, float, float]  # preference weights for web, store, app, phone
    coupon_p: float
    open_p: float  # per email received
    click_p: float  # per open
    unsubscribe_p: float  # per email received
    web_gap_days: float
    app_share: float
    loyalty_share: float
    satisfaction: float  # mean survey score, 0-10
    churns: bool = False


#        name          share  orders    gap  basket channels (web, store, app, phone)  coupon
#        open  click  unsub   web_gap  app   loyalty  satisfaction  churns
PERSONAS: Final = (
    Persona("loyal",      0.10, "repeat",  14, 70, (0.40, 0.35, 0.22, 0.03), 0.10,
            0.45, 0.25, 0.001,  4, 0.60, 0.90, 8.6),
    Persona("regular",    0.25, "repeat",  40, 50, (0.45, 0.35, 0.15, 0.05), 0.15,
            0.30, 0.18, 0.002,  8, 0.40, 0.50, 7.6),
    Persona("occasional", 0.22, "repeat", 100, 40, (0.55, 0.30, 0.10, 0.05), 0.25,
            0.18, 0.12, 0.004, 18, 0.20, 0.20, 6.8),
    Persona("one_off",    0.15, "once",     0, 45, (0.60, 0.30, 0.08, 0.02), 0.35,
            0.10, 0.10, 0.010, 45, 0.05, 0.05, 6.0),
    Persona("churner",    0.15, "repeat",  22, 45, (0.50, 0.30, 0.15, 0.05), 0.20,
            0.30, 0.15, 0.003,  8, 0.30, 0.40, 5.4, churns=True),
    Persona("prospect",   0.13, "never",    0,  0, (1.00, 0.00, 0.00, 0.00), 0.00,
            0.20, 0.15, 0.006, 12, 0.15, 0.00, 7.0),
)  # fmt: skip
_PERSONA_CUM: Final = tuple(sum(p.share for p in PERSONAS[: i + 1]) for i in range(len(PERSONAS)))

# Scheduled action kinds (indices into Simulation._handlers).
(
    K_JOIN, K_SHOP, K_ORDER, K_EMAIL, K_OPEN, K_CLICK, K_UNSUB, K_WEB, K_VISIT, K_APP,
    K_LOYALTY, K_REFUND, K_SURVEY, K_SUPPORT, K_PROFILE, K_ERASE,
) = range(16)  # fmt: skip
_NEVER: Final = 1 << 62
_WINDOW: Final = 3600  # seconds per calendar-queue window
_HOUR_MINUTE: Final = tuple(f"T{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
_SECOND: Final = tuple(f"{s:02d}Z" for s in range(60))

Event = dict[str, object]
_Entry = tuple[int, int, int, int, object]


class _Customer:
    """Mutable per-customer state of the simulation (slots: 100k customers stay a few tens of MB)."""

    __slots__ = (
        "app_gap", "app_user", "channel_cum", "churn_at", "cid", "click_p", "email_ok", "erased", "gap",
        "index", "member", "n", "new", "open_p", "orders", "persona", "points", "send_offset", "tier",
        "unsub_p", "web_gap",
    )  # fmt: skip

    def __init__(self, index: int, persona: Persona) -> None:
        self.index = index
        self.cid = f"c{index:06d}"
        self.persona = persona
        self.n = 0
        self.orders = 0
        self.points = 0
        self.tier: str | None = None
        self.erased = False
        self.churn_at = _NEVER
        self.new = False
        self.gap = 0.0
        self.channel_cum: tuple[float, ...] = ()
        self.email_ok = False
        self.app_user = False
        self.member = False
        self.open_p = self.click_p = self.unsub_p = 0.0
        self.web_gap = self.app_gap = 0.0
        self.send_offset = 0


class Simulation:
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
        self.seed = seed
        self.currency = currency
        self.rng = rng = random.Random(seed)
        self.origin = int(start.timestamp())
        self.end = self.origin + days * DAY
        self.days = days
        self.minor = 10**currency_exponent
        self.exponent = currency_exponent
        self._day_text: dict[int, str] = {}
        self._seq = 0
        self._heap: list[_Entry] = []  # actions due in the current window
        self._window = -1
        self._later: dict[int, list[_Entry]] = {}  # window number -> actions, unordered
        self._customers: list[_Customer] = []
        self._campaigns, self._campaign_ids = self._campaign_calendar(start, days)
        self._handlers: tuple[Callable[[_Customer, int, object], Event | None], ...] = (
            self._join, self._shop, self._order_action, self._email, self._open, self._click, self._unsub,
            self._web, self._visit, self._app, self._loyalty, self._refund, self._survey, self._support,
            self._profile, self._erase,
        )  # fmt: skip
        span = self.end - self.origin
        for index in range(customers):
            persona = PERSONAS[bisect.bisect_left(_PERSONA_CUM, rng.random() * _PERSONA_CUM[-1])]
            c = _Customer(index, persona)
            self._customers.append(c)
            # 60% were already customers when the period starts; the others sign up during it.
            c.new = rng.random() >= 0.6
            join = self.origin + (int(rng.random() * span) if c.new else 0)
            self._schedule(join, index, K_JOIN, None)
            if rng.random() < erasure_share:
                erase_at = join + int(rng.random() * (self.end - join))
                self._schedule(erase_at, index, K_ERASE, None)

    # -- machinery -------------------------------------------------------------------------------------

    def events(self) -> Iterator[tuple[str, Event]]:
        """Pop actions in time order; an erased customer's pending actions are dropped as they come up.

        A calendar queue: only the current hour's actions sit in a heap, later ones wait unordered in
        per-hour lists. One big heap of every pending action cost ~3 us per pop at 100k customers (cache
        misses over a million entries); small heaps keep the cost flat as the population grows.
        """
        handlers, customers, later = self._handlers, self._customers, self._later
        pop = heapq.heappop
        last = (self.end - 1) // _WINDOW
        window = self.origin // _WINDOW
        while window <= last:
            self._window = window
            heap = self._heap = later.pop(window, [])
            heapq.heapify(heap)
            while heap:
                t, _, index, kind, payload = pop(heap)
                c = customers[index]
                if c.erased:
                    continue
                event = handlers[kind](c, t, payload)
                if event is not None:
                    yield c.cid, event
            window += 1

    def _schedule(self, t: int, index: int, kind: int, payload: object) -> None:
        """Queue an action (never before the current time); the sequence number makes the order total."""
        if t < self.end:
            self._seq += 1
            window = t // _WINDOW
            if window == self._window:
                heapq.heappush(self._heap, (t, self._seq, index, kind, payload))
            else:
                bucket = self._later.get(window)
                if bucket is None:
                    self._later[window] = [(t, self._seq, index, kind, payload)]
                else:
                    bucket.append((t, self._seq, index, kind, payload))

    def _push(self, t: int, c: _Customer, kind: int, payload: object = None) -> None:
        self._schedule(t, c.index, kind, payload)

    def _at_active_hour(self, t: int, gap_days: float) -> int:
        """A time ``gap_days`` (exponential) after ``t``, moved to an hour people are active; never <= t."""
        rng = self.rng
        target = t + int(rng.expovariate(1.0 / gap_days) * DAY)
        when = target - target % DAY + _ACTIVE_HOURS[int(rng.random() * len(_ACTIVE_HOURS))] * 3600
        when += int(rng.random() * 3600)
        return when if when > t else when + DAY

    def _timestamp(self, t: int) -> str:
        """RFC 3339 UTC text; day prefixes are cached and minutes/seconds come from tables (hot path)."""
        day, second = divmod(t, DAY)
        text = self._day_text.get(day)
        if text is None:
            text = self._day_text[day] = datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d")
        minute, second = divmod(second, 60)
        return text + _HOUR_MINUTE[minute] + _SECOND[second]

    def _event(self, c: _Customer, t: int, event_type: str) -> Event:
        c.n += 1
        return {
            "type": event_type,
            "event_id": f"{self.seed}-{c.cid}-{c.n}",
            "customer_id": c.cid,
            "occurred_at": self._timestamp(t),
            "schema_version": 1,
        }

    def _money(self, minor: int) -> str:
        """Minor units -> exact decimal text with the currency's number of places (strings, never floats)."""
        if self.exponent == 0:
            return str(minor)
        whole, fraction = divmod(minor, self.minor)
        return f"{whole}.{fraction:0{self.exponent}d}"

    @staticmethod
    def _campaign_calendar(start: datetime, days: int) -> tuple[list[int], list[str]]:
        times: list[int] = []
        ids: list[str] = []
        first = start.replace(hour=_CAMPAIGN_HOUR, minute=0, second=0, microsecond=0)
        for offset in range(days + 1):
            day = first + timedelta(days=offset)
            if day.weekday() in _CAMPAIGN_WEEKDAYS and day >= start:
                times.append(int(day.timestamp()))
                ids.append(f"cmp-{day:%Y%m%d}")
        return times, ids

    # -- processes -------------------------------------------------------------------------------------

    def _join(self, c: _Customer, t: int, _: object) -> Event | None:
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

    def _shop(self, c: _Customer, t: int, winback: object) -> Event | None:
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

    def _order_action(self, c: _Customer, t: int, channel: object) -> Event | None:
        return self._order(c, t, channel if isinstance(channel, int) else 0)

    def _order(self, c: _Customer, t: int, channel: int) -> Event:
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
            sku = f"sku-{int(5000 * rng.random() ** 3):05d}"
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

    def _email(self, c: _Customer, t: int, index: object) -> Event | None:
        """A campaign send; the open, click or unsubscribe it causes is decided now and scheduled later."""
        assert isinstance(index, int)
        if not c.email_ok:
            return None
        rng = self.rng
        if index + 1 < len(self._campaigns):
            self._push(self._campaigns[index + 1] + c.send_offset, c, K_EMAIL, index + 1)
        if rng.random() >= _TARGETED_SHARE:
            return None
        churned = t >= c.churn_at
        event = self._event(c, t, "email_sent")
        event["campaign_id"] = self._campaign_ids[index]
        draw = rng.random()
        unsub = c.unsub_p * (5 if churned else 1)
        if draw < unsub + c.open_p * (0.3 if churned else 1.0):
            delay = min(int(rng.lognormvariate(8.5, 1.3)), 7 * DAY)  # median ~80 min
            self._push(t + 30 + delay, c, K_OPEN, (index, draw < unsub))
        return event

    def _open(self, c: _Customer, t: int, payload: object) -> Event | None:
        index, unsubscribe = cast(tuple[int, bool], payload)
        rng = self.rng
        event = self._event(c, t, "email_open")
        event["campaign_id"] = self._campaign_ids[index]
        if unsubscribe:
            self._push(t + 10 + int(rng.random() * 120), c, K_UNSUB, index)
        elif rng.random() < c.click_p:
            self._push(t + 5 + int(rng.random() * 600), c, K_CLICK, index)
        return event

    def _click(self, c: _Customer, t: int, index: object) -> Event | None:
        """A click lands on the site a few seconds later and sometimes converts into a web order."""
        assert isinstance(index, int)
        rng = self.rng
        event = self._event(c, t, "email_click")
        campaign = self._campaign_ids[index]
        event["campaign_id"] = campaign
        self._push(t + 1 + int(rng.random() * 9), c, K_VISIT, f"/campaign/{campaign}")
        if c.persona.orders == "repeat" and t < c.churn_at and rng.random() < 0.08:
            self._push(t + 300 + int(rng.random() * 3300), c, K_ORDER, 0)
        return event

    def _unsub(self, c: _Customer, t: int, index: object) -> Event | None:
        assert isinstance(index, int)
        c.email_ok = False
        event = self._event(c, t, "email_unsubscribe")
        event["campaign_id"] = self._campaign_ids[index]
        return event

    def _web(self, c: _Customer, t: int, _: object) -> Event | None:
        rng = self.rng
        churned = t >= c.churn_at
        self._push(self._at_active_hour(t, c.web_gap * (4.0 if churned else 1.0)), c, K_WEB)
        event = self._event(c, t, "web_visit")
        draw = rng.random()
        if draw < 0.35:
            event["page"] = f"/product/sku-{int(5000 * rng.random() ** 3):05d}"
        elif draw < 0.95:
            event["page"] = _PAGES[int(rng.random() * len(_PAGES))]
        return event  # ~5% of visits carry no page (bounced before the tag fired)

    def _visit(self, c: _Customer, t: int, page: object) -> Event | None:
        event = self._event(c, t, "web_visit")
        event["page"] = page
        return event

    def _app(self, c: _Customer, t: int, _: object) -> Event | None:
        rng = self.rng
        churned = t >= c.churn_at
        self._push(self._at_active_hour(t, c.app_gap * (4.0 if churned else 1.0)), c, K_APP)
        event = self._event(c, t, "app_session")
        event["duration_seconds"] = min(int(rng.lognormvariate(5.2, 1.0)), 4 * 3600)
        return event

    def _loyalty(self, c: _Customer, t: int, delta: object) -> Event | None:
        """Points earned (1 per major unit) or redeemed; the tier is sent only when it changes."""
        assert isinstance(delta, int)
        c.points = max(0, c.points + delta)
        event = self._event(c, t, "loyalty")
        event["points_delta"] = delta
        tier = next(name for floor, name in _TIERS if c.points >= floor)
        if tier != c.tier and delta > 0:
            c.tier = event["tier"] = tier
        return event

    def _refund(self, c: _Customer, t: int, payload: object) -> Event | None:
        order_id, amount = cast(tuple[str, int], payload)
        event = self._event(c, t, "refund")
        event.update(order_id=order_id, amount=self._money(amount), currency=self.currency)
        return event

    def _survey(self, c: _Customer, t: int, shift: object) -> Event | None:
        assert isinstance(shift, int)
        rng = self.rng
        score = round(rng.gauss(c.persona.satisfaction + shift, 1.8))
        event = self._event(c, t, "survey_response")
        event["score"] = min(10, max(0, score))
        if rng.random() < 0.5:
            event["interests"] = sorted(rng.sample(_INTERESTS, 1 + int(rng.random() * 3)))
        return event

    def _support(self, c: _Customer, t: int, _: object) -> Event | None:
        rng = self.rng
        resolved = rng.random() < 0.85
        event = self._event(c, t, "support_contact")
        event["channel"] = rng.choices(_SUPPORT_CHANNELS, (0.35, 0.3, 0.25, 0.1))[0]
        event["resolved"] = resolved
        if rng.random() < 0.3:  # satisfaction after a contact, lower when the problem stayed open
            self._push(t + int((0.5 + rng.random()) * DAY), c, K_SURVEY, 0 if resolved else -3)
        return event

    def _profile(self, c: _Customer, t: int, first: object) -> Event | None:
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

    def _erase(self, c: _Customer, t: int, _: object) -> Event | None:
        event = self._event(c, t, "customer_erased")
        c.erased = True  # set after building: this event is the customer's last one
        return event
