"""Folding one event into the running totals of a customer (the eventsourcing `apply` minus segments).

Each function writes the new totals into `v` (the state's values as a list, turned back into a state
once per event) and returns the grids the event can affect, in canonical grid order, so that
`evolution` re-evaluates only those. Rules for late events (older than what the state already saw):
sums and counts still take them (F, M, counters are order-insensitive); "first" times can move
earlier and "last" times only later; "latest value" fields (survey score, loyalty tier, declared
profile) keep the value with the latest event time, except that an older declaration still fills a
field that was never declared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from segmentation import lifecycle
from segmentation.category import add_order, split_order
from segmentation.definitions import Definitions
from segmentation.duplicates import duplicate_key
from segmentation.email_appetence import decay
from segmentation.limits import bounded_minor
from segmentation.recent_orders import OrderAlreadyCounted, counted, record_order, refund_order
from segmentation.rule_windows import SOURCE
from segmentation.state import (
    I_APP_SECONDS,
    I_APP_SESSIONS,
    I_BIRTH_YEAR,
    I_BIRTH_YEAR_AT,
    I_CATEGORIES,
    I_CHANNEL,
    I_CLICK_SCORE,
    I_COUPON_ORDERS,
    I_EMAIL_CLICKS,
    I_EMAIL_OPENS,
    I_EMAILS_SENT,
    I_FIRST_PURCHASE,
    I_GENDER,
    I_GENDER_AT,
    I_GROSS,
    I_HOUSEHOLD,
    I_HOUSEHOLD_AT,
    I_LAST_PURCHASE,
    I_LOYALTY_POINTS,
    I_LOYALTY_TIER,
    I_LOYALTY_TIER_AT,
    I_OPEN_SCORE,
    I_ORDERS,
    I_PROFILE_AT,
    I_PURCHASE_DAYS,
    I_REACTIVATED_AT,
    I_RECENT_ORDERS,
    I_REFUNDED,
    I_REFUNDS,
    I_REGION,
    I_REGION_AT,
    I_SCORES_AT,
    I_SUPPORT_CONTACTS,
    I_SUPPORT_UNRESOLVED,
    I_SURVEY_AT,
    I_SURVEY_SCORE,
    I_UNSUBSCRIBED,
    I_WEB_VISITS,
    CustomerState,
    RecentOrder,
)

__all__ = ["FOLDS", "TOUCHES"]

Fold = Callable[[CustomerState, Any, Definitions, list[Any], datetime], tuple[str, ...]]

_PURCHASE_GRIDS = ("lifecycle", "rfm", "value", "channel", "promotion", "clv")
_ITEMS_PURCHASE_GRIDS = ("lifecycle", "rfm", "value", "channel", "category", "promotion", "clv")


def _purchase(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    key = ""
    if d.recent_orders or s.recent_orders:  # 0 and none kept: no record (no windowed rules), no cost
        order_id = e.order_id
        key = duplicate_key(order_id)  # the key the record keeps (an order id, or a long one's digest)
        if s.recent_orders and (earlier := counted(s.recent_orders, key)) is not None:
            raise OrderAlreadyCounted(
                f"purchase: order {order_id!r} was already counted (a purchase of {earlier.at.isoformat()});"
                " an order sent again under a new event id is not a second order"
            )
    v[I_ORDERS] = s.orders + 1
    amount = bounded_minor("purchase", e.amount, e.currency, d)
    v[I_GROSS] = s.gross_minor + amount
    channel = e.channel
    index = I_CHANNEL[channel]
    v[index] += 1  # v starts as a copy of the state
    coupon = e.coupon_used
    if coupon:
        v[I_COUPON_ORDERS] = s.coupon_orders + 1
    split = split_order(e.items, amount, d.category)
    if split:
        v[I_CATEGORIES] = add_order(s.categories, split)
    if d.recent_orders:  # 0: no record (no windowed rules), no cost
        order = RecentOrder(t, key, channel, coupon, amount, tuple(name for name, _ in split))
        v[I_RECENT_ORDERS] = record_order(s.recent_orders, order, d.recent_orders)
    first = s.first_purchase_at
    last = s.last_purchase_at
    # distinct UTC purchase days (CLV's x + 1): exact in order; a late purchase on a day other than the
    # first's or the last's counts as a new day (the state keeps no list of days), see docs/clv.md
    days = s.purchase_days or s.orders  # a state stored before purchase_days existed: orders stand in
    if first is None or last is None:
        v[I_PURCHASE_DAYS] = 1
    elif (day := t.date()) != last.date() and day != first.date():
        v[I_PURCHASE_DAYS] = days + 1
    elif not s.purchase_days:
        v[I_PURCHASE_DAYS] = days
    if first is None or t < first:
        v[I_FIRST_PURCHASE] = t
    if last is None or t >= last:
        v[I_LAST_PURCHASE] = t
        # A purchase made while at_risk or lost reactivates; the stage *at the purchase time* decides.
        # In order, that is the stored stage (the state was advanced to t); for a late purchase it is
        # still exact to compute it, because no purchase happened between `last` and t.
        if last is not None:
            clock = s.clock
            stage = s.seg_lifecycle if clock is None or t >= clock else lifecycle.classify(s, d.lifecycle, t)
            if stage in lifecycle.LAPSED:
                v[I_REACTIVATED_AT] = t
    return _ITEMS_PURCHASE_GRIDS if split else _PURCHASE_GRIDS


def _refund(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    amount = bounded_minor("refund", e.amount, e.currency, d)
    v[I_REFUNDED] = s.refunded_minor + amount
    v[I_REFUNDS] = s.refunds + 1
    if s.recent_orders:
        record = refund_order(s.recent_orders, duplicate_key(e.order_id), amount)
        if record is not None:
            v[I_RECENT_ORDERS] = record
    return ("rfm", "value", "clv")


def _email_sent(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    v[I_EMAILS_SENT] = s.emails_sent + 1
    # a send changes the email segment only out of no_email (the decay curve does not move)
    return ("email",) if s.seg_email == "no_email" else ()


def _engage(
    s: CustomerState, d: Definitions, v: list[Any], t: datetime, opened: float, clicked: float
) -> None:
    ref = s.email_scores_at
    if ref is None:
        v[I_OPEN_SCORE], v[I_CLICK_SCORE], v[I_SCORES_AT] = opened, clicked, t
    elif t >= ref:
        factor = decay(t - ref, d.email.half_life_seconds)
        v[I_OPEN_SCORE] = s.email_open_score * factor + opened
        v[I_CLICK_SCORE] = s.email_click_score * factor + clicked
        v[I_SCORES_AT] = t
    else:  # late: add the contribution as it has decayed by the reference time
        factor = decay(ref - t, d.email.half_life_seconds)
        v[I_OPEN_SCORE] = s.email_open_score + opened * factor
        v[I_CLICK_SCORE] = s.email_click_score + clicked * factor


def _email_open(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    v[I_EMAIL_OPENS] = s.email_opens + 1
    _engage(s, d, v, t, 1.0, 0.0)
    return ("email",)


def _email_click(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    v[I_EMAIL_CLICKS] = s.email_clicks + 1
    _engage(s, d, v, t, 0.0, 1.0)
    return ("email",)


def _unsubscribe(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    v[I_UNSUBSCRIBED] = True
    return () if s.unsubscribed else ("email",)


def _web_visit(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    v[I_WEB_VISITS] = s.web_visits + 1
    return ()


def _app_session(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    v[I_APP_SESSIONS] = s.app_sessions + 1
    v[I_APP_SECONDS] = s.app_seconds + (e.duration_seconds or 0)
    return ()


def _newer(previous: datetime | None, t: datetime) -> bool:
    return previous is None or t >= previous


def _loyalty(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    v[I_LOYALTY_POINTS] = s.loyalty_points + e.points_delta
    if e.tier and _newer(s.loyalty_tier_at, t):
        v[I_LOYALTY_TIER], v[I_LOYALTY_TIER_AT] = e.tier, t
    return ()


def _support(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    v[I_SUPPORT_CONTACTS] = s.support_contacts + 1
    v[I_SUPPORT_UNRESOLVED] = s.support_unresolved + (0 if e.resolved else 1)
    return ()


def _survey(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    if not _newer(s.survey_at, t):
        return ()
    v[I_SURVEY_SCORE], v[I_SURVEY_AT] = e.score, t
    return ("satisfaction",)


def _profile(s: CustomerState, e: Any, d: Definitions, v: list[Any], t: datetime) -> tuple[str, ...]:
    """Each declared field keeps the value of its latest declaration (per field: a late update of one
    field must not lose a newer value of another, docs/semantics.md)."""
    if e.birth_year is not None and e.birth_year > t.year:
        raise ValueError(f"profile_update: birth_year {e.birth_year} is after the event's year {t.year}")
    for index, at, value in (
        (I_BIRTH_YEAR, I_BIRTH_YEAR_AT, e.birth_year),
        (I_GENDER, I_GENDER_AT, e.gender or None),
        (I_REGION, I_REGION_AT, e.region or None),
        (I_HOUSEHOLD, I_HOUSEHOLD_AT, e.household),
    ):
        declared: datetime | None = s[at]  # type: ignore[assignment]
        if declared is None and s[index] is not None:  # stored before the per-field times: `profile_at`
            declared = v[at] = s.profile_at  # pinned now, before this update moves `profile_at` on
        if value is None:
            continue
        if _newer(declared, t):
            v[index], v[at] = value, t
    if _newer(s.profile_at, t):
        v[I_PROFILE_AT] = t
    return ("age_band", "region")


FOLDS: Mapping[str, Fold] = {
    "purchase": _purchase,
    "refund": _refund,
    "email_sent": _email_sent,
    "email_open": _email_open,
    "email_click": _email_click,
    "email_unsubscribe": _unsubscribe,
    "web_visit": _web_visit,
    "app_session": _app_session,
    "loyalty": _loyalty,
    "support_contact": _support,
    "survey_response": _survey,
    "profile_update": _profile,
}

_SEEN = ("first_seen_at", "last_seen_at")

# Audience fields (see `audiences.FIELDS`) each event type can change directly; SOURCE: the recent orders.
TOUCHES: Mapping[str, frozenset[str]] = {
    kind: frozenset((*_SEEN, *fields))
    for kind, fields in {
        "purchase": (
            "orders",
            "monetary",
            "average_basket",
            "first_purchase_at",
            "last_purchase_at",
            "coupon_orders",
            SOURCE,
            "p_alive",
            "expected_purchases_12m",
            "clv_12m",
        ),
        "refund": ("monetary", "refunds", SOURCE, "clv_12m"),
        "email_sent": ("emails_sent",),
        "email_open": ("email_opens",),
        "email_click": ("email_clicks",),
        "email_unsubscribe": ("unsubscribed",),
        "web_visit": ("web_visits",),
        "app_session": ("app_sessions", "app_seconds"),
        "loyalty": ("loyalty_points", "loyalty_tier"),
        "support_contact": ("support_contacts", "support_unresolved"),
        "survey_response": ("survey_score",),
        "profile_update": ("birth_year", "gender", "region", "household"),
    }.items()
}
