"""The canonical text of rules: literals, windowed aggregates and whole expressions.

`parse_expression(to_text(n)) == n` for every tree (the property tests check it); `definitions diff`
compares rules by this text, and a windowed aggregate's text is its key in a transition's `why`.
"""

from __future__ import annotations

from decimal import Decimal

from segmentation.rules_syntax import And, Compare, Membership, Node, Not, Or, Value, Windowed, Within

__all__ = ["format_value", "to_text", "window_text"]


def window_text(node: Windowed) -> str:
    """A windowed aggregate as written canonically, without its comparison (its key in a `why`)."""
    unit = node.unit[:-1] if node.amount == 1 else node.unit
    filters = "".join(f", {name} == {format_value(value)}" for name, value in node.filters)
    return f"{node.field}(last {node.amount} {unit}{filters})"


def format_value(value: Value) -> str:
    """Render a literal in the rule language (Decimal in plain notation, never exponent form)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def to_text(node: Node) -> str:
    """Canonical text of an AST; parse_expression(to_text(n)) == n, which the property tests check."""
    if isinstance(node, Compare):
        return f"{node.field} {node.op} {format_value(node.value)}"
    if isinstance(node, Membership):
        keyword = "not in" if node.negated else "in"
        return f"{node.field} {keyword} ({', '.join(format_value(v) for v in node.values)})"
    if isinstance(node, Within):
        unit = node.unit[:-1] if node.amount == 1 else node.unit
        return f"{node.field} within {node.amount} {unit}"
    if isinstance(node, Windowed):
        return f"{window_text(node)} {node.op} {format_value(node.value)}"
    if isinstance(node, Not):
        return f"not {_wrap(node.operand, node)}"
    joiner = " and " if isinstance(node, And) else " or "
    return joiner.join(_wrap(operand, node) for operand in node.operands)


def _wrap(node: Node, parent: Node) -> str:
    """Parenthesise only where precedence alone would not rebuild the same tree."""
    bare = not isinstance(node, And | Or) or (isinstance(node, And) and isinstance(parent, Or))
    return to_text(node) if bare else f"({to_text(node)})"
