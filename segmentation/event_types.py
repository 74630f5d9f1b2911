"""The event contract as types: one frozen pydantic model per event type, discriminated by ``type``.

Field checks pydantic cannot express come from :mod:`segmentation.event_values`; :mod:`segmentation.events`
parses raw input into these models.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

from segmentation.currencies import CURRENCY_EXPONENT
from segmentation.event_values import (
    JSON_NUMBER,
    currency_code,
    customer_ref,
    money,
    positive_money,
    supported_version,
    timestamp,
)

__all__ = [
    "EVENT_CLASSES", "EVENT_TYPES", "AppSession", "CustomerErased", "EmailClick", "EmailOpen", "EmailSent",
    "EmailUnsubscribe", "Event", "EventBase", "Item", "Loyalty", "ProfileUpdate", "Purchase", "Refund",
    "SupportContact", "SurveyResponse", "WebVisit",
]  # fmt: skip

_MAX_INT: Final = 1_000_000_000  # keeps counters far inside Redis' signed 64-bit integers


def _money_schema(bound: str) -> WithJsonSchema:
    return WithJsonSchema(
        {"anyOf": [{"type": "number", bound: 0}, {"type": "string", "pattern": JSON_NUMBER}]}
    )


_Money = Annotated[Decimal, BeforeValidator(money), _money_schema("minimum")]
_PositiveMoney = Annotated[Decimal, BeforeValidator(positive_money), _money_schema("exclusiveMinimum")]
_Currency = Annotated[str, PlainValidator(currency_code), WithJsonSchema({"enum": [*CURRENCY_EXPONENT]})]
_Id = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")]
_Ref = Annotated[StrictStr, Field(min_length=1, max_length=128)]
_Label = Annotated[StrictStr, Field(min_length=1, max_length=64)]
_CONFIG: Final = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class EventBase(BaseModel):
    """Fields every event carries: ``event_id`` is the de-duplication key, ``occurred_at`` the event time."""

    model_config = _CONFIG

    type: str
    event_id: _Id
    customer_id: Annotated[_Id, AfterValidator(customer_ref)]
    occurred_at: Annotated[datetime, BeforeValidator(timestamp)]
    schema_version: Annotated[Literal[1], BeforeValidator(supported_version)]


class Item(BaseModel):
    """One order line; ``unit_price`` is optional because many shops only send the order total.

    ``category`` (optional) names the product category; without it the definitions' ``category.sku_prefixes``
    may map the sku to one (docs/purchase_depth.md)."""

    model_config = _CONFIG

    sku: _Ref
    quantity: Annotated[StrictInt, Field(ge=1, le=_MAX_INT)]
    unit_price: _Money | None = None
    category: _Label | None = None


class Purchase(EventBase):
    type: Literal["purchase"] = "purchase"
    order_id: _Ref
    amount: _Money
    currency: _Currency
    channel: Literal["web", "store", "app", "phone"]
    items: Annotated[tuple[Item, ...], Field(max_length=500)] = ()
    coupon_used: StrictBool = False


class Refund(EventBase):
    type: Literal["refund"] = "refund"
    order_id: _Ref
    amount: _PositiveMoney
    currency: _Currency


class EmailSent(EventBase):
    type: Literal["email_sent"] = "email_sent"
    campaign_id: _Ref | None = None


class EmailOpen(EventBase):
    type: Literal["email_open"] = "email_open"
    campaign_id: _Ref | None = None


class EmailClick(EventBase):
    type: Literal["email_click"] = "email_click"
    campaign_id: _Ref | None = None


class EmailUnsubscribe(EventBase):
    type: Literal["email_unsubscribe"] = "email_unsubscribe"
    campaign_id: _Ref | None = None


class WebVisit(EventBase):
    type: Literal["web_visit"] = "web_visit"
    page: Annotated[StrictStr, Field(min_length=1, max_length=2048)] | None = None


class AppSession(EventBase):
    type: Literal["app_session"] = "app_session"
    duration_seconds: Annotated[StrictInt, Field(ge=0, le=_MAX_INT)] | None = None


class Loyalty(EventBase):
    type: Literal["loyalty"] = "loyalty"
    points_delta: Annotated[StrictInt, Field(ge=-_MAX_INT, le=_MAX_INT)]
    tier: _Label | None = None


class SupportContact(EventBase):
    type: Literal["support_contact"] = "support_contact"
    channel: Literal["email", "phone", "chat", "store"]
    resolved: StrictBool


class SurveyResponse(EventBase):
    """``score`` is the 0-10 satisfaction / NPS answer; ``interests`` are declared topics."""

    type: Literal["survey_response"] = "survey_response"
    score: Annotated[StrictInt, Field(ge=0, le=10)]
    interests: Annotated[tuple[_Label, ...], Field(max_length=50)] = ()


class ProfileUpdate(EventBase):
    """Declared profile data; a field left out or null means "unchanged", never "erase"."""

    type: Literal["profile_update"] = "profile_update"
    birth_year: Annotated[StrictInt, Field(ge=1900, le=2100)] | None = None
    gender: Literal["female", "male", "other", "undisclosed"] | None = None
    region: _Label | None = None
    household: Annotated[StrictInt, Field(ge=1, le=20)] | None = None


class CustomerErased(EventBase):
    """Privacy erasure: everything known about the customer must go."""

    type: Literal["customer_erased"] = "customer_erased"


Event = Annotated[
    Purchase | Refund | EmailSent | EmailOpen | EmailClick | EmailUnsubscribe | WebVisit | AppSession
    | Loyalty | SupportContact | SurveyResponse | ProfileUpdate | CustomerErased,
    Field(discriminator="type"),
]  # fmt: skip
EVENT_CLASSES: Final[tuple[type[EventBase], ...]] = (
    Purchase, Refund, EmailSent, EmailOpen, EmailClick, EmailUnsubscribe, WebVisit, AppSession,
    Loyalty, SupportContact, SurveyResponse, ProfileUpdate, CustomerErased,
)  # fmt: skip
EVENT_TYPES: Final[tuple[str, ...]] = tuple(cls.model_fields["type"].default for cls in EVENT_CLASSES)
