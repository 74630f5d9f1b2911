"""Audiences: named targeting rules, each a two-segment grid `audience:<name>` (member / not_member).

Rules are written in the declarative language of `segmentation.rules` and may only name the customer
fields of the allow-list below (`FIELDS`); values are derived from the state at evaluation time.
Time-dependent fields (`days since ...`, age) are deliberately absent: time enters only through
`within N days` on DATETIME fields, which is what lets `Rule.next_change` give exact change instants.

| field | type | meaning |
|---|---|---|
| orders | NUMBER | purchases counted (F) |
| monetary | NUMBER | net monetary in base currency major units (Decimal) |
| average_basket | NUMBER | gross / orders in major units (null without purchase) |
| refunds | NUMBER | refund events |
| emails_sent, email_opens, email_clicks | NUMBER | email counters |
| web_visits, app_sessions, app_seconds | NUMBER | engagement counters |
| loyalty_points | NUMBER | loyalty balance |
| support_contacts, support_unresolved | NUMBER | support counters |
| survey_score | NUMBER | last survey score (null if none) |
| birth_year, household | NUMBER | declared (null if not declared) |
| gender, region, loyalty_tier | STRING | declared (null if not declared) |
| lifecycle, rfm, value, email, channel, age_band, region_group, satisfaction | STRING | current segments |
| unsubscribed | BOOL | email unsubscription |
| first_seen_at, last_seen_at, first_purchase_at, last_purchase_at | DATETIME | for `within` |
| lifecycle_since | DATETIME | start of the current lifecycle stage |
| coupon_orders | NUMBER | orders placed with a coupon (lifetime) |
| category, promotion | STRING | current segments of the purchase-depth grids |
| clv | STRING | current CLV tier (null without a `clv:` definitions section) |
| p_alive, expected_purchases_12m, clv_12m | FALLING | CLV model figures at the instant evaluated (`clv`) |

Windowed aggregates over the bounded record of recent orders (`segmentation.rule_windows`):
`orders(...)`, `spend(...)` (major units, net of refunds naming the order) and `coupon_orders(...)`,
each `(last N days|hours[, channel == "web"][, category == "shoes"][, coupon == true])`, compared with a
number, e.g. `orders(last 30 days, channel == "web") >= 1 and coupon_orders(last 30 days) == 0`.

The FALLING fields need a `clv:` section; they only fall while no event arrives, may only be compared
with <, <=, >, >= and a number, and `Rule.next_change` gives the exact instant each comparison flips.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal

from segmentation import clv, clv_fields
from segmentation.channel import CHANNELS
from segmentation.config_reading import DefinitionsError
from segmentation.instants import iso
from segmentation.rule_windows import SOURCE, WindowFilters
from segmentation.rules import FieldType, Rule, leaves
from segmentation.rules_syntax import And, Compare, Membership, Node, Not, Or, Windowed, Within
from segmentation.state import CustomerState

__all__ = [
    "DECLARED_FIELDS", "FIELDS", "MEMBER", "NOT_MEMBER", "SEGMENT_FIELDS", "Getter", "check_segment_names",
    "explain", "fades_only", "getters", "values", "window_filters",
]  # fmt: skip

MEMBER = "member"
NOT_MEMBER = "not_member"
PREFIX = "audience:"

_N, _S, _D, _B, _F = FieldType.NUMBER, FieldType.STRING, FieldType.DATETIME, FieldType.BOOL, FieldType.FALLING

# field name -> (type, getter(state, minor-unit scale))
Getter = Callable[[CustomerState, Decimal], object]


def _basket(s: CustomerState, scale: Decimal) -> object:
    return None if s.orders == 0 else (Decimal(s.gross_minor) / s.orders * scale)


_SPEC: dict[str, tuple[FieldType, Getter]] = {
    "orders": (_N, lambda s, k: s.orders),
    "monetary": (_N, lambda s, k: Decimal(max(0, s.gross_minor - s.refunded_minor)) * k),
    "average_basket": (_N, _basket),
    "refunds": (_N, lambda s, k: s.refunds),
    "emails_sent": (_N, lambda s, k: s.emails_sent),
    "email_opens": (_N, lambda s, k: s.email_opens),
    "email_clicks": (_N, lambda s, k: s.email_clicks),
    "web_visits": (_N, lambda s, k: s.web_visits),
    "app_sessions": (_N, lambda s, k: s.app_sessions),
    "app_seconds": (_N, lambda s, k: s.app_seconds),
    "loyalty_points": (_N, lambda s, k: s.loyalty_points),
    "support_contacts": (_N, lambda s, k: s.support_contacts),
    "support_unresolved": (_N, lambda s, k: s.support_unresolved),
    "survey_score": (_N, lambda s, k: s.survey_score),
    "birth_year": (_N, lambda s, k: s.birth_year),
    "household": (_N, lambda s, k: s.household),
    "gender": (_S, lambda s, k: s.gender),
    "region": (_S, lambda s, k: None if s.region is None else s.region.upper()),  # as the region grid
    "loyalty_tier": (_S, lambda s, k: s.loyalty_tier),
    "lifecycle": (_S, lambda s, k: s.seg_lifecycle),
    "rfm": (_S, lambda s, k: s.seg_rfm),
    "value": (_S, lambda s, k: s.seg_value),
    "email": (_S, lambda s, k: s.seg_email),
    "channel": (_S, lambda s, k: s.seg_channel),
    "age_band": (_S, lambda s, k: s.seg_age_band),
    "region_group": (_S, lambda s, k: s.seg_region),
    "satisfaction": (_S, lambda s, k: s.seg_satisfaction),
    "unsubscribed": (_B, lambda s, k: s.unsubscribed),
    "first_seen_at": (_D, lambda s, k: s.first_seen_at),
    "last_seen_at": (_D, lambda s, k: s.last_seen_at),
    "first_purchase_at": (_D, lambda s, k: s.first_purchase_at),
    "last_purchase_at": (_D, lambda s, k: s.last_purchase_at),
    "lifecycle_since": (_D, lambda s, k: s.lifecycle_since),
    "coupon_orders": (_N, lambda s, k: s.coupon_orders),
    "category": (_S, lambda s, k: s.seg_category),
    "promotion": (_S, lambda s, k: s.seg_promotion),
    "clv": (_S, lambda s, k: s.seg_clv),
}

FIELDS: Mapping[str, FieldType] = {
    **{name: kind for name, (kind, _) in _SPEC.items()},
    **dict.fromkeys(clv_fields.FIELDS, _F),
}
# Not a field a rule may name: what its windowed aggregates read, (record, minor-to-major scale).
_SPEC[SOURCE] = (_D, lambda s, k: (s.recent_orders, k))


def window_filters(categories: tuple[str, ...]) -> WindowFilters:
    """The filters of windowed aggregates and the literals each accepts (categories from the definitions)."""
    return {
        "channel": frozenset(CHANNELS),
        "category": frozenset(categories),
        "coupon": frozenset({True, False}),
    }


# Declared personal data: an audience may test it, but its value never goes into a transition's `why`.
DECLARED_FIELDS: frozenset[str] = frozenset({"birth_year", "household", "gender", "region"})

# Which grid's segment each segment field mirrors (an audience on it is re-evaluated when it changes).
SEGMENT_FIELDS: Mapping[str, str] = {
    "lifecycle": "lifecycle",
    "rfm": "rfm",
    "value": "value",
    "email": "email",
    "channel": "channel",
    "age_band": "age_band",
    "region_group": "region",
    "satisfaction": "satisfaction",
    "lifecycle_since": "lifecycle",
    "category": "category",
    "promotion": "promotion",
    "clv": "clv",
}


def lower_case_regions(rule: Rule) -> list[str]:
    """The rule's region codes not in upper case: `region` is compared upper-cased, as the region grid
    reads it (a declared "fr" is in the group of "FR"), so such a literal could never match."""
    found: list[str] = []
    for leaf in leaves(rule.expr):
        if isinstance(leaf, Compare | Membership) and leaf.field == "region":
            literals = (leaf.value,) if isinstance(leaf, Compare) else leaf.values
            found += [v for v in literals if isinstance(v, str) and v != v.upper()]
    return found


def check_segment_names(rules: tuple[Rule, ...], grids: Mapping[str, tuple[str, ...]]) -> None:
    """Refuse a rule comparing a segment field with a name that is no segment of its grid: such a literal is
    never the customer's segment, so `==`/`in` never match and `!=`/`not in` match everyone (a typo)."""
    for rule in rules:
        for leaf in leaves(rule.expr):
            grid = SEGMENT_FIELDS.get(leaf.field, "") if isinstance(leaf, Compare | Membership) else ""
            segments = grids.get(grid)
            if segments is None:
                continue
            literals = (leaf.value,) if isinstance(leaf, Compare) else leaf.values  # type: ignore[union-attr]
            for literal in literals:
                if isinstance(literal, str) and literal not in segments:
                    raise DefinitionsError(
                        f"audiences.{rule.name}: {literal!r} is not a segment of grid {grid}"
                        f" ({', '.join(segments)})"
                    )


def getters(rule: Rule, model: clv.ClvConfig | None = None) -> tuple[tuple[str, Getter], ...]:
    """How to read each field of the rule from a state (`model`: the definitions' clv section)."""
    return tuple((name, _getter(name, model)) for name in sorted(rule.fields))


def _getter(name: str, model: clv.ClvConfig | None) -> Getter:
    if name in _SPEC:
        return _SPEC[name][1]
    return lambda s, k: clv_fields.figure(s, model, name, k)


def values(
    s: CustomerState, rule: Rule, scale: Decimal, model: clv.ClvConfig | None = None
) -> dict[str, object]:
    """The rule's fields, read from the state (`scale` turns minor units into major units)."""
    return {name: getter(s, scale) for name, getter in getters(rule, model)}


def fades_only(node: Node, negated: bool = False) -> bool:
    """Whether time alone can only turn the rule from true to false (no `within` under a `not`).

    `x within N days` is true, then false once and for all; `and`/`or` keep that direction, `not`
    reverses it. For such a rule a non-member stays a non-member until an event, so its next change
    needs no search: this skips most `Rule.next_change` calls on the hot path.
    """
    if isinstance(node, Within):
        return not negated
    if isinstance(node, Windowed):  # an aggregate only decreases with time: `>=`/`>` fade, `<=`/`<` grow
        if node.op in (">", ">="):
            return not negated
        return negated if node.op in ("<", "<=") else False
    if isinstance(node, Compare) and node.field in clv_fields.FIELDS:  # > and >= fade, < and <= appear
        return (node.op in (">", ">=")) != negated
    if isinstance(node, Not):
        return fades_only(node.operand, not negated)
    if isinstance(node, And | Or):
        return all(fades_only(operand, negated) for operand in node.operands)
    return True


def explain(
    s: CustomerState,
    rule: Rule,
    scale: Decimal,
    now: datetime,
    readers: tuple[tuple[str, Getter], ...] | None = None,
) -> dict[str, str]:
    """The rule and its fields' values, in field name order; `readers` is `getters(rule)` if already known.

    A windowed aggregate is shown by its text with its value at `now`."""
    why = {"rule": rule.text}
    for name, getter in readers or getters(rule):  # getters are in name order
        value = getter(s, scale)
        if name == SOURCE:
            why.update((text, str(aggregate)) for text, aggregate in rule.window_values({SOURCE: value}, now))
            continue
        if name in DECLARED_FIELDS:  # personal data stays in the hash: say only whether it was declared
            why[name] = "null" if value is None else "declared"
            continue
        why[name] = "null" if value is None else (iso(value) if isinstance(value, datetime) else str(value))
    return why
