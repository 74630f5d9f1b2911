"""The customer state as readable text fields: every field under its storage-format-1 name and text.

Since storage format 4 the customer hash keeps only a few of these (`READABLE`, for personalisation services
that read Redis directly; see `state_mapping`); the read client, the HTTP API, the export and `segstream
customer --json` show the others from the packed state, with exactly these names and texts. Empty string
means "none".
Times are ISO 8601 in UTC; floats are written with `repr` so they read back bit-identical.

| field | meaning |
|---|---|
| `customer_id` | customer id |
| `clock` | event time up to which the state has been advanced (segments are as of this instant) |
| `definitions_version` | definitions version the segments were computed with |
| `currency` | base currency of every `*_minor` amount |
| `first_seen_at`, `last_seen_at` | first / last event time of any kind |
| `first_purchase_at`, `last_purchase_at` | first / last purchase time (last never moves backwards) |
| `orders` | purchases (F); refunds do not reduce it |
| `gross_minor`, `refunded_minor` | purchases and refunds, base-currency minor units |
| `monetary_minor` | *derived*: net monetary M = max(0, gross - refunded), minor units |
| `monetary` | *derived*: the same in major units (decimal string) |
| `refunds` | refund events |
| `channel:web`, `channel:store`, `channel:app`, `channel:phone` | purchases per channel |
| `email:sent`, `email:opens`, `email:clicks` | email event counters |
| `email:open_score`, `email:click_score`, `email:scores_at` | decayed scores as of `email:scores_at` |
| `email:unsubscribed` | `1` once unsubscribed, else `0` |
| `web_visits`, `app_sessions`, `app_seconds` | engagement counters |
| `survey_score`, `survey_at` | most recent survey answer (0-10) and its time |
| `birth_year`, `gender`, `region`, `household`, `profile_at` | declared profile, time of latest update |
| `loyalty_points`, `loyalty_tier`, `loyalty_tier_at` | loyalty balance, latest tier and its time |
| `support_contacts`, `support_unresolved` | support counters |
| `lifecycle_since` | when the current lifecycle stage began |
| `reactivated_at` | the purchase that last reactivated the customer |
| `rfm:r`, `rfm:f`, `rfm:m` | RFM scores 1-5 as of `clock` (empty without purchase) |
| `segment:<grid>` | segment per grid: lifecycle, rfm, value, email, channel, age_band, region, satisfaction |
| `segment:audience:<name>` | `member` or `not_member` for each audience (kept sorted by name) |
| `due:lifecycle`, `due:rfm`, `due:email`, `due:age_band`, `due:audiences` | next change by time, per grid |
| `next_due_at` | the earliest of the `due:*` (when `advance` must next run for this customer) |
| `purchase_days` | distinct UTC days with a purchase (BG/NBD frequency x = purchase_days - 1) |
| `segment:clv`, `due:clv` | predicted-CLV tier (only with a `clv:` definitions section), next change |
| `recent_event_ids` | JSON list of the last event ids applied, ids over 8 bytes as digests (duplicates) |
| `coupon_orders` | orders placed with a coupon |
| `categories` | JSON `[[category, orders, spend_minor], ...]` by name: lifetime per category |
| `recent_orders` | JSON `[[time, order key, channel, coupon 0/1, amount_minor, [categories]], ...]` |
| `segment:category`, `segment:promotion` | segments of the purchase-depth grids |
| `birth_year_at`, `gender_at`, `region_at`, `household_at` | event time of each declared field's value |
| `erased_at` | what the last erasure covers (its date or the last event seen, the later): no effect before |
| `definitions_changes` | definitions changes applied to the state (numbered in their ids: `id_cause`) |
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from segmentation.currencies import CURRENCY_EXPONENT
from segmentation.instants import iso
from segmentation.state import CustomerState, RecentOrder

__all__ = ["AUDIENCE", "FIELDS", "READABLE", "derived_fields", "state_fields", "texts_of"]


def _opt(encode: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: "" if value is None else encode(value)


def _bool(value: Any) -> str:
    return "1" if value else "0"


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _orders_text(record: tuple[RecentOrder, ...]) -> str:
    return _json(
        [[iso(o.at), o.key, o.channel, int(o.coupon), o.amount_minor, list(o.categories)] for o in record]
    )


def _categories_text(value: Any) -> str:
    return _json([list(total) for total in value])


_OPT = _opt(str)
_TIME = _opt(iso)
# (key, attribute of the state, encoder), in a stable, readable order. Two values of one type are equal
# exactly when their texts are, except floats (0.0 == -0.0, but their reprs differ) and booleans (an int 2
# and 1 would both print "1"): `state_mapping.changed_fields` relies on it.
FIELDS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("customer_id", "customer_id", str),
    ("clock", "clock", _TIME),
    ("definitions_version", "definitions_version", _OPT),
    ("currency", "currency", _OPT),
    ("first_seen_at", "first_seen_at", _TIME),
    ("last_seen_at", "last_seen_at", _TIME),
    ("first_purchase_at", "first_purchase_at", _TIME),
    ("last_purchase_at", "last_purchase_at", _TIME),
    ("orders", "orders", str),
    ("gross_minor", "gross_minor", str),
    ("refunded_minor", "refunded_minor", str),
    ("refunds", "refunds", str),
    ("channel:web", "channel_web", str),
    ("channel:store", "channel_store", str),
    ("channel:app", "channel_app", str),
    ("channel:phone", "channel_phone", str),
    ("email:sent", "emails_sent", str),
    ("email:opens", "email_opens", str),
    ("email:clicks", "email_clicks", str),
    ("email:open_score", "email_open_score", repr),
    ("email:click_score", "email_click_score", repr),
    ("email:scores_at", "email_scores_at", _TIME),
    ("email:unsubscribed", "unsubscribed", _bool),
    ("web_visits", "web_visits", str),
    ("app_sessions", "app_sessions", str),
    ("app_seconds", "app_seconds", str),
    ("survey_score", "survey_score", _OPT),
    ("survey_at", "survey_at", _TIME),
    ("birth_year", "birth_year", _OPT),
    ("gender", "gender", _OPT),
    ("region", "region", _OPT),
    ("household", "household", _OPT),
    ("profile_at", "profile_at", _TIME),
    ("loyalty_points", "loyalty_points", str),
    ("loyalty_tier", "loyalty_tier", _OPT),
    ("loyalty_tier_at", "loyalty_tier_at", _TIME),
    ("support_contacts", "support_contacts", str),
    ("support_unresolved", "support_unresolved", str),
    ("lifecycle_since", "lifecycle_since", _TIME),
    ("reactivated_at", "reactivated_at", _TIME),
    ("rfm:r", "rfm_r", _OPT),
    ("rfm:f", "rfm_f", _OPT),
    ("rfm:m", "rfm_m", _OPT),
    ("segment:lifecycle", "seg_lifecycle", _OPT),
    ("segment:rfm", "seg_rfm", _OPT),
    ("segment:value", "seg_value", _OPT),
    ("segment:email", "seg_email", _OPT),
    ("segment:channel", "seg_channel", _OPT),
    ("segment:age_band", "seg_age_band", _OPT),
    ("segment:region", "seg_region", _OPT),
    ("segment:satisfaction", "seg_satisfaction", _OPT),
    ("due:lifecycle", "due_lifecycle", _TIME),
    ("due:rfm", "due_rfm", _TIME),
    ("due:email", "due_email", _TIME),
    ("due:age_band", "due_age_band", _TIME),
    ("due:audiences", "due_audiences", _TIME),
    ("next_due_at", "next_due_at", _TIME),
    ("coupon_orders", "coupon_orders", str),
    ("categories", "categories", _categories_text),
    ("recent_orders", "recent_orders", _orders_text),
    ("segment:category", "seg_category", _OPT),
    ("segment:promotion", "seg_promotion", _OPT),
    ("purchase_days", "purchase_days", str),
    ("segment:clv", "seg_clv", _OPT),
    ("due:clv", "due_clv", _TIME),
    ("birth_year_at", "birth_year_at", _TIME),
    ("gender_at", "gender_at", _TIME),
    ("region_at", "region_at", _TIME),
    ("household_at", "household_at", _TIME),
    ("erased_at", "erased_at", _TIME),
    ("definitions_changes", "definitions_changes", str),
)
AUDIENCE = "segment:audience:"
_RECENT = "recent_event_ids"
# What the customer hash keeps readable, besides every `segment:audience:<name>` (`state_mapping`): each
# grid's segment and the figures a personalisation service reads directly (the derived `monetary_minor`
# besides). `clock`, `definitions_version` and `currency` were readable up to 3d981cf and the decimal
# `monetary` up to storage format 3: the client and the API give them (they cost ~105 bytes a customer).
READABLE: frozenset[str] = frozenset(
    {key for key, _, _ in FIELDS if key.startswith("segment:")} | {"orders", "last_purchase_at"}
)


def state_fields(state: CustomerState) -> dict[str, str]:
    """Every field of the state as text (the readers' view): `FIELDS`, the audiences, the event-id window
    and the derived `monetary_minor` / `monetary`."""
    mapping = {key: encode(getattr(state, attr)) for key, attr, encode in FIELDS}
    for name, segment in state.audiences:
        mapping[AUDIENCE + name] = segment
    mapping[_RECENT] = _recent_text(state.recent_event_ids)
    mapping.update(derived_fields(state))
    return mapping


def _recent_text(ids: tuple[str, ...]) -> str:
    """JSON list of the ids, by hand when no id needs escaping (byte-identical, and faster)."""
    raw = "".join(ids)
    if ids and '"' not in raw and "\\" not in raw and raw.isprintable():
        return '["' + '", "'.join(ids) + '"]'
    return json.dumps(list(ids), ensure_ascii=False)


def derived_fields(state: CustomerState) -> dict[str, str]:
    """`monetary_minor` and `monetary`: the net monetary in minor and in major units (decimal text)."""
    net = state.monetary_minor
    exponent = CURRENCY_EXPONENT.get(state.currency or "", 2)
    return {"monetary_minor": str(net), "monetary": str(Decimal(net).scaleb(-exponent))}


_BY_KEY = {key: (attr, encode) for key, attr, encode in FIELDS}


def texts_of(state: CustomerState, keys: Sequence[str]) -> list[str | None]:
    """The texts `state_fields` gives the named keys (None for a key it lacks), encoding only those."""
    out: list[str | None] = []
    for key in keys:
        known = _BY_KEY.get(key)
        if known is not None:
            out.append(known[1](getattr(state, known[0])))
        elif key in ("monetary_minor", "monetary"):
            out.append(derived_fields(state)[key])
        elif key.startswith(AUDIENCE):
            out.append(dict(state.audiences).get(key[len(AUDIENCE) :]))
        else:
            out.append(state_fields(state).get(key))
    return out
