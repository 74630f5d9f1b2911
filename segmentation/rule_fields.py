"""Rule validation at definition time: the allow-list's field types and what each may be compared with.

Split from `rules` so that the evaluation module stays small; `rules.parse_rule` calls these checks.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal

from segmentation.rule_text import format_value
from segmentation.rule_windows import AGGREGATES, WindowFilters
from segmentation.rules_syntax import Compare, Membership, RuleError, Windowed, Within

__all__ = ["FieldType", "check_leaf", "check_windowed"]

ORDERING = frozenset({"<", "<=", ">", ">="})


class FieldType(enum.Enum):
    """Type of an allow-listed customer field; NUMBER values are int or Decimal, DATETIME tz-aware."""

    NUMBER = "number"
    STRING = "string"
    DATETIME = "datetime"
    BOOL = "boolean"
    FALLING = "falling number"  # only falls while no event arrives: `at`, `first_below` (clv_fields.Figure)


def check_windowed(rule: str, leaf: Windowed, filters: WindowFilters | None) -> None:
    if filters is None:
        raise RuleError(rule, f"windowed aggregates such as {leaf.field}(...) are not available here")
    if leaf.field not in AGGREGATES:
        raise RuleError(rule, f"unknown aggregate {leaf.field!r} (allowed: {', '.join(AGGREGATES)})")
    if leaf.value is None or kind_of(leaf.value) != "number":
        raise RuleError(rule, f"{leaf.field}(...) is a number, compared with {format_value(leaf.value)}")
    for name, value in leaf.filters:
        allowed = filters.get(name)
        if allowed is None:
            raise RuleError(rule, f"unknown filter {name!r} (allowed: {', '.join(sorted(filters))})")
        if value not in allowed or type(value) is not type(next(iter(allowed))):
            shown = ", ".join(sorted(format_value(v) for v in allowed))
            raise RuleError(rule, f"filter {name!r} cannot be {format_value(value)} (allowed: {shown})")


def kind_of(value: str | int | Decimal | bool) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


def check_leaf(rule: str, leaf: Compare | Membership | Within, fields: Mapping[str, FieldType]) -> None:
    """Reject at definition time what could only fail or silently never match at evaluation time."""
    kind = fields.get(leaf.field)
    if kind is None:
        allowed = ", ".join(sorted(fields))
        raise RuleError(rule, f"unknown field {leaf.field!r} (allowed: {allowed})")
    if kind is FieldType.FALLING:
        literal = leaf.value if isinstance(leaf, Compare) else None
        if not (
            isinstance(leaf, Compare)
            and leaf.op in ORDERING
            and literal is not None
            and kind_of(literal) == "number"
        ):
            raise RuleError(
                rule, f"{leaf.field!r} changes with time: compare it with <, <=, > or >= a number"
            )
        return
    if isinstance(leaf, Within):
        if kind is not FieldType.DATETIME:
            raise RuleError(rule, f"'within' needs a DATETIME field, {leaf.field!r} is {kind.name}")
        return
    if isinstance(leaf, Compare) and leaf.value is None:
        if leaf.op in ORDERING:
            raise RuleError(rule, f"operator {leaf.op!r} cannot be used with null (use == or !=)")
        return
    if kind is FieldType.DATETIME:
        raise RuleError(
            rule, f"DATETIME field {leaf.field!r} can only be compared with null or used with 'within'"
        )
    if isinstance(leaf, Compare) and leaf.op in ORDERING and kind is not FieldType.NUMBER:
        raise RuleError(rule, f"operator {leaf.op!r} is not allowed on {kind.name} field {leaf.field!r}")
    for value in (leaf.value,) if isinstance(leaf, Compare) else leaf.values:
        if value is None:
            raise RuleError(rule, "null is not allowed in an 'in' list (use == null)")
        if kind_of(value) != kind.value:
            raise RuleError(
                rule,
                f"type mismatch: {kind.name} field {leaf.field!r} compared with "
                f"{kind_of(value)} {format_value(value)}",
            )
