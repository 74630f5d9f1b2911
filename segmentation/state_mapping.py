"""The customer state as a flat mapping of strings (a Redis hash), and back, losslessly.

Readers (personalisation, HTTP API) use these field names directly. Empty string means "none".
Times are ISO 8601 in UTC; floats are written with `repr` so they read back bit-identical.
Keys starting with `_` belong to the storage adapter (`_offset`, `_updated_at`...) and are ignored
by `state_from_mapping`, as are the derived keys (marked *derived*), which exist only for readers.

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
| `recent_event_ids` | JSON list of the last event ids applied, long ones as digests (duplicate detection) |
| `coupon_orders` | orders placed with a coupon |
| `categories` | JSON `[[category, orders, spend_minor], ...]` by name: lifetime per category |
| `recent_orders` | JSON `[[time, order key, channel, coupon 0/1, amount_minor, [categories]], ...]` |
| `segment:category`, `segment:promotion` | segments of the purchase-depth grids |

The last five fields came with the purchase-depth grids: a hash written before them reads as their
defaults (no segment, no order); `apply`/`advance` then fill in the two grids (cause `definitions`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from segmentation.currencies import CURRENCY_EXPONENT
from segmentation.instants import iso, parse_iso
from segmentation.state import ID_SEPARATOR, CategoryTotal, CustomerState, RecentOrder, join_ids

__all__ = ["changed_fields", "state_from_mapping", "state_to_mapping"]


def _opt(encode: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: "" if value is None else encode(value)


def _opt_decode(decode: Callable[[str], Any]) -> Callable[[str], Any]:
    return lambda text: None if text == "" else decode(text)


def _bool(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, got {text!r}")
    return text == "1"


_Codec = tuple[Callable[[Any], str], Callable[[str], Any]]
_STR: _Codec = (str, str)
_OPT_STR: _Codec = (_opt(str), _opt_decode(str))
_INT: _Codec = (str, int)
_OPT_INT: _Codec = (_opt(str), _opt_decode(int))
_FLOAT: _Codec = (repr, float)
_BOOL: _Codec = (lambda value: "1" if value else "0", _bool)
_TIME: _Codec = (_opt(iso), _opt_decode(parse_iso))


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _list(text: str) -> list[Any]:
    value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError("expected a JSON list")
    return value


def _categories(text: str) -> tuple[CategoryTotal, ...]:
    out = []
    for item in _list(text):
        name, orders, spend = item  # a malformed item raises ValueError or TypeError
        if not (isinstance(name, str) and type(orders) is int and type(spend) is int):
            raise ValueError(f"expected [category, orders, spend_minor], got {item!r}")
        out.append(CategoryTotal(name, orders, spend))
    return tuple(out)


def _orders_text(record: tuple[RecentOrder, ...]) -> str:
    return _json(
        [[iso(o.at), o.key, o.channel, int(o.coupon), o.amount_minor, list(o.categories)] for o in record]
    )


def _orders(text: str) -> tuple[RecentOrder, ...]:
    out = []
    for item in _list(text):
        at, key, channel, coupon, amount, categories = item
        if not (
            isinstance(key, str) and isinstance(channel, str) and coupon in (0, 1) and type(amount) is int
            and isinstance(categories, list) and all(isinstance(c, str) for c in categories)
        ):  # fmt: skip
            raise ValueError(f"expected [time, key, channel, 0/1, amount_minor, [categories]], got {item!r}")
        out.append(RecentOrder(parse_iso(at), key, channel, coupon == 1, amount, tuple(categories)))
    return tuple(out)


_CATEGORIES: _Codec = (lambda value: _json([list(total) for total in value]), _categories)
_ORDERS: _Codec = (_orders_text, _orders)

# (key in the mapping, attribute of the state, codec), in a stable, readable order.
_TABLE: tuple[tuple[str, str, _Codec], ...] = (
    ("customer_id", "customer_id", _STR),
    ("clock", "clock", _TIME),
    ("definitions_version", "definitions_version", _OPT_STR),
    ("currency", "currency", _OPT_STR),
    ("first_seen_at", "first_seen_at", _TIME),
    ("last_seen_at", "last_seen_at", _TIME),
    ("first_purchase_at", "first_purchase_at", _TIME),
    ("last_purchase_at", "last_purchase_at", _TIME),
    ("orders", "orders", _INT),
    ("gross_minor", "gross_minor", _INT),
    ("refunded_minor", "refunded_minor", _INT),
    ("refunds", "refunds", _INT),
    ("channel:web", "channel_web", _INT),
    ("channel:store", "channel_store", _INT),
    ("channel:app", "channel_app", _INT),
    ("channel:phone", "channel_phone", _INT),
    ("email:sent", "emails_sent", _INT),
    ("email:opens", "email_opens", _INT),
    ("email:clicks", "email_clicks", _INT),
    ("email:open_score", "email_open_score", _FLOAT),
    ("email:click_score", "email_click_score", _FLOAT),
    ("email:scores_at", "email_scores_at", _TIME),
    ("email:unsubscribed", "unsubscribed", _BOOL),
    ("web_visits", "web_visits", _INT),
    ("app_sessions", "app_sessions", _INT),
    ("app_seconds", "app_seconds", _INT),
    ("survey_score", "survey_score", _OPT_INT),
    ("survey_at", "survey_at", _TIME),
    ("birth_year", "birth_year", _OPT_INT),
    ("gender", "gender", _OPT_STR),
    ("region", "region", _OPT_STR),
    ("household", "household", _OPT_INT),
    ("profile_at", "profile_at", _TIME),
    ("loyalty_points", "loyalty_points", _INT),
    ("loyalty_tier", "loyalty_tier", _OPT_STR),
    ("loyalty_tier_at", "loyalty_tier_at", _TIME),
    ("support_contacts", "support_contacts", _INT),
    ("support_unresolved", "support_unresolved", _INT),
    ("lifecycle_since", "lifecycle_since", _TIME),
    ("reactivated_at", "reactivated_at", _TIME),
    ("rfm:r", "rfm_r", _OPT_INT),
    ("rfm:f", "rfm_f", _OPT_INT),
    ("rfm:m", "rfm_m", _OPT_INT),
    ("segment:lifecycle", "seg_lifecycle", _OPT_STR),
    ("segment:rfm", "seg_rfm", _OPT_STR),
    ("segment:value", "seg_value", _OPT_STR),
    ("segment:email", "seg_email", _OPT_STR),
    ("segment:channel", "seg_channel", _OPT_STR),
    ("segment:age_band", "seg_age_band", _OPT_STR),
    ("segment:region", "seg_region", _OPT_STR),
    ("segment:satisfaction", "seg_satisfaction", _OPT_STR),
    ("due:lifecycle", "due_lifecycle", _TIME),
    ("due:rfm", "due_rfm", _TIME),
    ("due:email", "due_email", _TIME),
    ("due:age_band", "due_age_band", _TIME),
    ("due:audiences", "due_audiences", _TIME),
    ("next_due_at", "next_due_at", _TIME),
    ("coupon_orders", "coupon_orders", _INT),
    ("categories", "categories", _CATEGORIES),
    ("recent_orders", "recent_orders", _ORDERS),
    ("segment:category", "seg_category", _OPT_STR),
    ("segment:promotion", "seg_promotion", _OPT_STR),
    ("purchase_days", "purchase_days", _INT),
    ("segment:clv", "seg_clv", _OPT_STR),
    ("due:clv", "due_clv", _TIME),
)
# Fields a hash written before them may lack: read as the state's default (see the module docstring).
_OPTIONAL = frozenset({
    "coupon_orders", "categories", "recent_orders", "segment:category", "segment:promotion",
    "purchase_days", "segment:clv", "due:clv",
})  # fmt: skip
_AUDIENCE = "segment:audience:"
_RECENT = "recent_event_ids"
_DERIVED = frozenset({"monetary_minor", "monetary"})
_KEYS = frozenset(key for key, _, _ in _TABLE)


def state_to_mapping(state: CustomerState) -> dict[str, str]:
    """Every field, always (so an HSET of the whole mapping leaves no stale field behind)."""
    mapping = {key: encode(getattr(state, attr)) for key, attr, (encode, _) in _TABLE}
    for name, segment in state.audiences:
        mapping[_AUDIENCE + name] = segment
    mapping[_RECENT] = _recent_text(state.recent_event_ids)
    net = state.monetary_minor
    mapping["monetary_minor"] = str(net)
    exponent = CURRENCY_EXPONENT.get(state.currency or "", 2)
    mapping["monetary"] = str(Decimal(net).scaleb(-exponent))
    return mapping


_POSITIONS = {attr: n for n, attr in enumerate(CustomerState._fields)}
# (position in the state tuple, key in the mapping, encoder, whether two values of one type are equal exactly
# when their texts are): floats are not (0.0 == -0.0, but their reprs differ), nor booleans (an int 2 and 1
# would both print "1"), so those are always encoded to be compared. For the others a change of value of
# the same type is a change of text, and the old value need not be encoded at all. (Codecs compared with
# `!=`, not `is`: compiled by mypyc, a module-level tuple is a new object at each use.)
_INDEXED: tuple[tuple[int, str, Callable[[Any], str], bool], ...] = tuple(
    (_POSITIONS[attr], key, codec[0], codec != _FLOAT and codec != _BOOL) for key, attr, codec in _TABLE
)


def changed_fields(old: CustomerState, new: CustomerState) -> tuple[dict[str, str], list[str]]:
    """What differs between the mappings of two states, without serialising either in full: the keys whose
    text differs (with the new text) and the keys only `old` has. Exactly the diff of `state_to_mapping(old)`
    and `state_to_mapping(new)`; only the fields whose value differs are encoded (the worker's hot path)."""
    changed: dict[str, str] = {}
    removed: list[str] = []
    if old is new:
        return changed, removed
    for i, key, encode, exact in _INDEXED:
        a, b = old[i], new[i]
        if a is b:
            continue
        if exact and type(a) is type(b):
            if a != b:
                changed[key] = encode(b)
            continue
        text = encode(b)
        if text != encode(a):
            changed[key] = text
    if old.audiences != new.audiences:
        before = {_AUDIENCE + name: segment for name, segment in old.audiences}
        after = {_AUDIENCE + name: segment for name, segment in new.audiences}
        changed.update((key, segment) for key, segment in after.items() if before.get(key) != segment)
        removed = [key for key in before if key not in after]
    if old.recent_ids != new.recent_ids:
        text = _recent_joined(new.recent_ids)
        if text != _recent_joined(old.recent_ids):
            changed[_RECENT] = text
    if (
        old.gross_minor != new.gross_minor
        or old.refunded_minor != new.refunded_minor
        or old.currency != new.currency
    ):
        before = _derived(old)
        changed.update((key, text) for key, text in _derived(new).items() if before[key] != text)
    return changed, removed


def _recent_joined(recent_ids: str) -> str:
    """`_recent_text` of the ids in their stored string, without splitting it when no id needs escaping."""
    inner = recent_ids[1:-1]
    if inner and '"' not in inner and "\\" not in inner and inner.replace(ID_SEPARATOR, "").isprintable():
        return '["' + inner.replace(ID_SEPARATOR, '", "') + '"]'
    return _recent_text(tuple(recent_ids.split(ID_SEPARATOR)[1:-1]))


def _recent_text(ids: tuple[str, ...]) -> str:
    """JSON list of the ids, by hand when no id needs escaping (byte-identical; ~1 us less per event)."""
    raw = "".join(ids)
    if ids and '"' not in raw and "\\" not in raw and raw.isprintable():
        return '["' + '", "'.join(ids) + '"]'
    return json.dumps(list(ids), ensure_ascii=False)


def _derived(state: CustomerState) -> dict[str, str]:
    net = state.monetary_minor
    exponent = CURRENCY_EXPONENT.get(state.currency or "", 2)
    return {"monetary_minor": str(net), "monetary": str(Decimal(net).scaleb(-exponent))}


def state_from_mapping(mapping: Mapping[str, str]) -> CustomerState:
    """Rebuild the state; a missing, unknown or malformed field raises ValueError naming it."""
    fields: dict[str, Any] = {}
    audiences: list[tuple[str, str]] = []
    for key, text in mapping.items():
        if key.startswith("_") or key in _DERIVED or key in _KEYS or key == _RECENT:
            continue
        if not key.startswith(_AUDIENCE):
            raise ValueError(f"unknown state field {key!r}")
        audiences.append((key[len(_AUDIENCE) :], text))
    for key, attr, (_, decode) in _TABLE:
        if key not in mapping:
            if key in _OPTIONAL:
                continue
            raise ValueError(f"state field {key!r} is missing")
        try:
            fields[attr] = decode(mapping[key])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"state field {key!r}: {exc}") from None
    recent = json.loads(mapping.get(_RECENT, "[]"))
    if not isinstance(recent, list) or not all(isinstance(item, str) for item in recent):
        raise ValueError(f"state field {_RECENT!r}: expected a JSON list of strings")
    fields["recent_ids"] = join_ids(tuple(recent))
    fields["audiences"] = tuple(sorted(audiences))
    return CustomerState(**fields)
