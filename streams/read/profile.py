"""The typed answers of the read side: a customer's profile, per-segment KPIs, pages of members.

Built from the stored strings of a customer hash (fields: segmentation/state_mapping.py); empty values mean
"none". Shared by the Python client, the HTTP API and its OpenAPI description.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import BaseModel, ConfigDict, Field

from segmentation.currencies import CURRENCY_EXPONENT
from streams.store.history_format import is_trimmed

_CLV = "segment:clv"
AMOUNT_PATTERN = "^-?[0-9]+([.][0-9]+)?$"  # as is in the OpenAPI document; net of refunds: may be < 0


class Answer(BaseModel):
    """Base of every read-side answer: frozen, because an answer is a value, not a handle on state."""

    model_config = ConfigDict(frozen=True)


class Money(Answer):
    """An exact amount in major units with its currency: a decimal string, never a float (a float cannot hold
    329615.25 exactly, and scripts summing them drift); the `*_minor` integers stay beside it."""

    amount: str = Field(
        pattern=AMOUNT_PATTERN,
        description="major units, a decimal string with the currency's minor-unit digits (e.g. 329615.25)",
    )
    currency: str = Field(description="ISO 4217 code (the definitions' base currency)")


def money(minor: int, currency: str) -> Money:
    """`minor` integer minor units as major units (EUR 32961525 -> 329615.25; JPY 500 -> 500)."""
    return Money(amount=_major(Decimal(minor), currency), currency=currency)


def money_ratio(minor: int, divisor: int, currency: str) -> Money:
    """`minor / divisor` (an average) rounded half-to-even to the currency's minor unit, the rounding of
    `segmentation.money`: an average basket is an amount one could pay, not a fraction of a cent."""
    return Money(amount=_major(Decimal(minor) / Decimal(divisor), currency), currency=currency)


def _major(minor: Decimal, currency: str) -> str:
    exponent = CURRENCY_EXPONENT[currency]
    whole = minor.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    if not whole:
        whole = Decimal(0)  # -0.4 minor units is "0.00", not "-0.00"
    return format(whole.scaleb(-exponent), "f")


class Rfm(Answer):
    segment: str | None
    r: int | None = Field(description="recency score 1-5")
    f: int | None = Field(description="frequency score 1-5")
    m: int | None = Field(description="monetary score 1-5")
    last_purchase_at: datetime | None = Field(description="raw recency")
    orders: int = Field(description="raw frequency")
    monetary_minor: int = Field(description="raw monetary: net, base-currency minor units")
    net: Money | None = Field(None, description="raw monetary in major units (null without a currency)")


class Lifecycle(Answer):
    stage: str | None
    since: datetime | None
    reactivated_at: datetime | None


class Freshness(Answer):
    last_event_at: datetime | None
    clock: datetime | None = Field(description="event time the segments are as of")
    offset: str | None = Field(description="`partition:offset` of the last event applied")
    definitions_version: str | None


class Metrics(Answer):
    currency: str | None
    orders: int
    refunds: int
    gross_minor: int
    refunded_minor: int
    monetary_minor: int
    monetary: str | None = Field(
        description="net in major units, no currency (kept for compatibility: `net`)"
    )
    gross: Money | None = Field(None, description="purchases, major units (null without a currency)")
    refunded: Money | None = Field(None, description="refunds, major units")
    net: Money | None = Field(None, description="max(0, gross - refunded), major units: RFM's monetary")
    first_seen_at: datetime | None
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


class Declared(Answer):
    """What the customer declared about themself: personal data, served only with the `pii:read` scope."""

    birth_year: int | None
    gender: str | None
    region: str | None
    household: int | None
    declared_at: datetime | None = Field(description="event time of the last profile update")


class CustomerProfile(Answer):
    customer_id: str
    partition: int
    segments: dict[str, str | None]
    rfm: Rfm
    lifecycle: Lifecycle
    metrics: Metrics
    freshness: Freshness
    history_trimmed: bool
    declared: Declared | None = Field(
        None, description="declared personal data; null unless asked for (HTTP: a key with `pii:read`)"
    )


class Kpis(Answer):
    customers: int
    revenue_minor: int
    orders: int
    average_basket_minor: float | None = Field(description="revenue_minor / orders; None without orders")
    revenue: Money | None = Field(None, description="net revenue in major units")
    average_basket: Money | None = Field(
        None, description="revenue / orders, rounded half-to-even to the minor unit; null without orders"
    )


class MembersPage(Answer):
    members: list[str]
    next_cursor: str | None = Field(description="pass back as `cursor`; None when done")


def profile_of(
    customer_id: str,
    partition: int,
    row: Mapping[str, str],
    declared: bool = False,
    history: str | None = None,
) -> CustomerProfile:
    """The profile from the readers' view of the hash (`stored_state.readers_view`), which holds no history:
    `history` is the hash's `history` field (for `history_trimmed`). The declared personal data only when
    `declared` (the caller is entitled to it)."""
    get = row.get
    currency = get("currency") or None
    known = currency if currency in CURRENCY_EXPONENT else None

    def amount(field: str) -> Money | None:
        return None if known is None else money(_opt_int(get(field)) or 0, known)

    # every grid the hash carries; `clv` only once a clv definitions section gave it a segment (docs/clv.md)
    segments = {k[8:]: (v or None) for k, v in row.items() if k.startswith("segment:") and (v or k != _CLV)}
    return CustomerProfile(
        customer_id=customer_id,
        partition=partition,
        segments=segments,
        rfm=Rfm(
            segment=get("segment:rfm") or None,
            r=_opt_int(get("rfm:r")),
            f=_opt_int(get("rfm:f")),
            m=_opt_int(get("rfm:m")),
            last_purchase_at=_time(get("last_purchase_at")),
            orders=_opt_int(get("orders")) or 0,
            monetary_minor=_opt_int(get("monetary_minor")) or 0,
            net=amount("monetary_minor"),
        ),
        lifecycle=Lifecycle(
            stage=get("segment:lifecycle") or None,
            since=_time(get("lifecycle_since")),
            reactivated_at=_time(get("reactivated_at")),
        ),
        metrics=Metrics(
            currency=get("currency") or None,
            orders=_opt_int(get("orders")) or 0,
            refunds=_opt_int(get("refunds")) or 0,
            gross_minor=_opt_int(get("gross_minor")) or 0,
            refunded_minor=_opt_int(get("refunded_minor")) or 0,
            monetary_minor=_opt_int(get("monetary_minor")) or 0,
            monetary=get("monetary") or None,
            gross=amount("gross_minor"),
            refunded=amount("refunded_minor"),
            net=amount("monetary_minor"),
            first_seen_at=_time(get("first_seen_at")),
            first_purchase_at=_time(get("first_purchase_at")),
            last_purchase_at=_time(get("last_purchase_at")),
        ),
        freshness=Freshness(
            last_event_at=_time(get("last_seen_at")),
            clock=_time(get("clock")),
            offset=get("_offset") or None,
            definitions_version=get("definitions_version") or None,
        ),
        history_trimmed=is_trimmed(history),
        declared=Declared(
            birth_year=_opt_int(get("birth_year")),
            gender=get("gender") or None,
            region=get("region") or None,
            household=_opt_int(get("household")),
            declared_at=_time(get("profile_at")),
        )
        if declared
        else None,
    )


def kpis_of(values: Mapping[str, int], currency: str | None = None) -> Kpis:
    """The segment's figures; in major units too when `currency` (the definitions' base) is given."""
    orders, revenue = values.get("orders", 0), values.get("revenue_minor", 0)
    known = currency if currency in CURRENCY_EXPONENT else None
    return Kpis(
        customers=values.get("customers", 0),
        revenue_minor=revenue,
        orders=orders,
        average_basket_minor=round(revenue / orders, 2) if orders else None,
        revenue=None if known is None else money(revenue, known),
        average_basket=None if known is None or not orders else money_ratio(revenue, orders, known),
    )


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _opt_int(text: str | None) -> int | None:
    return int(text) if text else None
