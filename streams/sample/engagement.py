"""Engagement behaviour: campaign emails and the opens, clicks, unsubscribes they cause; visits, app use."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, cast

from streams.sample.personas import Customer
from streams.sample.schedule import (
    DAY,
    K_APP,
    K_CLICK,
    K_EMAIL,
    K_OPEN,
    K_ORDER,
    K_UNSUB,
    K_VISIT,
    K_WEB,
    Event,
    Schedule,
)

__all__ = ["Engagement"]

_PAGES: Final = ("/", "/search", "/cart", "/account", "/offers", "/stores", "/category/new", "/category/sale")
_CAMPAIGN_WEEKDAYS: Final = (1, 4)  # Tuesday and Friday newsletters, as most retail CRMs run them
_CAMPAIGN_HOUR: Final = 9
_TARGETED_SHARE: Final = 0.75  # share of a campaign's sends a subscribed customer actually receives


class Engagement(Schedule):
    """Newsletters, site visits and app sessions of a customer, as actions of the simulation."""

    _campaigns: list[int]  # send times and ids, set by the simulation from _campaign_calendar
    _campaign_ids: list[str]
    targeted_share: float = _TARGETED_SHARE

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

    def _email(self, c: Customer, t: int, index: object) -> Event | None:
        """A campaign send; the open, click or unsubscribe it causes is decided now and scheduled later."""
        assert isinstance(index, int)
        if not c.email_ok:
            return None
        rng = self.rng
        if index + 1 < len(self._campaigns):
            self._push(self._campaigns[index + 1] + c.send_offset, c, K_EMAIL, index + 1)
        if rng.random() >= self.targeted_share:
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

    def _open(self, c: Customer, t: int, payload: object) -> Event | None:
        index, unsubscribe = cast(tuple[int, bool], payload)
        rng = self.rng
        event = self._event(c, t, "email_open")
        event["campaign_id"] = self._campaign_ids[index]
        if unsubscribe:
            self._push(t + 10 + int(rng.random() * 120), c, K_UNSUB, index)
        elif rng.random() < c.click_p:
            self._push(t + 5 + int(rng.random() * 600), c, K_CLICK, index)
        return event

    def _click(self, c: Customer, t: int, index: object) -> Event | None:
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

    def _unsub(self, c: Customer, t: int, index: object) -> Event | None:
        assert isinstance(index, int)
        c.email_ok = False
        event = self._event(c, t, "email_unsubscribe")
        event["campaign_id"] = self._campaign_ids[index]
        return event

    def _web(self, c: Customer, t: int, _: object) -> Event | None:
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

    def _visit(self, c: Customer, t: int, page: object) -> Event | None:
        event = self._event(c, t, "web_visit")
        event["page"] = page
        return event

    def _app(self, c: Customer, t: int, _: object) -> Event | None:
        rng = self.rng
        churned = t >= c.churn_at
        self._push(self._at_active_hour(t, c.app_gap * (4.0 if churned else 1.0)), c, K_APP)
        event = self._event(c, t, "app_session")
        event["duration_seconds"] = min(int(rng.lognormvariate(5.2, 1.0)), 4 * 3600)
        return event
