"""Targeting rules: named audiences as validated predicates over an allow-list of customer fields.

Rules are parsed by the hand-written parser of `rules_syntax` (never eval or an expression engine),
checked against the field allow-list and its types, then compiled into a tree of small closures so
that evaluating a rule per event costs about a microsecond.

Windowed aggregates (`orders(last 30 days, channel == "web") >= 1`, see `rule_windows`) read the
customer's recent orders; they change with time too, at the instants their orders leave the window.

Null semantics: a null (None or missing) value makes every comparison false except `== null` and
`!= null`; `field != "x"`, `field in (...)` and `field not in (...)` are all false when the field is
null, and so is `field within N days`; `not` is plain negation, so `not email == "x"` is true when
email is null.  Only `within` depends on time, so `next_change` finds the instant where a rule
changes without any new event (for exact time-driven transitions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from segmentation.rule_fields import FieldType, check_leaf, check_windowed
from segmentation.rule_text import to_text, window_text
from segmentation.rule_windows import SOURCE, CompiledWindow, WindowFilters, compile_windowed
from segmentation.rules_syntax import (
    And,
    Compare,
    Membership,
    Node,
    Not,
    Or,
    RuleError,
    Value,
    Windowed,
    Within,
    parse_expression,
)

__all__ = ["FieldType", "Node", "Rule", "RuleError", "leaves", "parse_rule", "to_text", "window_text"]


_Predicate = Callable[[Mapping[str, Any], datetime], bool]


@dataclass(frozen=True)
class Rule:
    """A named audience; build it with `parse_rule`, which validates it against the allow-list."""

    name: str
    text: str
    expr: Node
    falling: frozenset[str] = frozenset()  # the FALLING fields among the rule's (set by `parse_rule`)
    fields: frozenset[str] = field(init=False)
    _predicate: _Predicate = field(init=False, repr=False, compare=False)
    _windows: tuple[tuple[str, timedelta], ...] = field(init=False, repr=False, compare=False)
    _windowed: tuple[CompiledWindow, ...] = field(init=False, repr=False, compare=False)
    _thresholds: tuple[tuple[str, Decimal, bool], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compared = list(leaves(self.expr))
        windows = {(leaf.field, _window(leaf)) for leaf in compared if isinstance(leaf, Within)}
        windowed = {leaf: compile_windowed(leaf)[0] for leaf in compared if isinstance(leaf, Windowed)}
        # a comparison with a falling field flips once: when the value goes below the literal (<, >=) or
        # reaches it (<=, >)
        thresholds = {
            (leaf.field, Decimal(leaf.value), leaf.op in ("<=", ">"))  # type: ignore[arg-type]
            for leaf in compared
            if isinstance(leaf, Compare) and leaf.field in self.falling
        }
        fields = frozenset(SOURCE if isinstance(leaf, Windowed) else leaf.field for leaf in compared)
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "_predicate", _compile(self.expr, self.falling))
        object.__setattr__(self, "_windows", tuple(sorted(windows)))
        object.__setattr__(self, "_windowed", tuple(windowed.values()))
        object.__setattr__(self, "_thresholds", tuple(sorted(thresholds)))

    def evaluate(self, values: Mapping[str, object], now: datetime) -> bool:
        """Whether a customer with these field values is in the audience at `now` (event time)."""
        try:
            return self._predicate(values, now)
        except (TypeError, ArithmeticError) as exc:
            raise RuleError(self.name, f"cannot evaluate: {exc}") from exc

    def next_change(
        self, values: Mapping[str, object], now: datetime, current: bool | None = None
    ) -> datetime | None:
        """Earliest instant after `now` at which `evaluate` changes with time alone, else None.

        Each `within` clause flips from true to false once, at field + window, and each comparison with a
        falling field once, when the value crosses the literal, so the result is constant between those
        deadlines: the answer is the first deadline whose result differs.
        `current` is `evaluate(values, now)` when the caller already has it (saves one evaluation).
        """
        windows = self._windows
        if len(windows) == 1 and not self._windowed and not self._thresholds:  # common: no set, no sort
            name, window = windows[0]
            deadline = self._deadline(values.get(name), window)
            if deadline is None or deadline <= now:
                return None
            if current is None:
                current = self.evaluate(values, now)
            return deadline if self.evaluate(values, deadline) != current else None
        deadlines: set[datetime] = set()
        for name, window in windows:
            deadline = self._deadline(values.get(name), window)
            if deadline is not None and deadline > now:
                deadlines.add(deadline)
        for compiled in self._windowed:
            deadlines.update(compiled.deadlines(values, now))
        for name, limit, inclusive in self._thresholds:
            value = values.get(name)
            if value is not None:
                crossing = value.first_below(limit, inclusive, now)  # type: ignore[attr-defined]
                if crossing is not None and crossing > now:
                    deadlines.add(crossing)
        if not deadlines:
            return None
        if current is None:
            current = self.evaluate(values, now)
        for deadline in sorted(deadlines):
            if self.evaluate(values, deadline) != current:
                return deadline
        return None

    def _deadline(self, stamp: Any, window: timedelta) -> datetime | None:
        """When `stamp within window` turns false (None: no stamp, or past datetime.max)."""
        if stamp is None:
            return None
        try:
            deadline: datetime = stamp + window
        except OverflowError:  # past datetime.max: never reached
            return None
        except TypeError as exc:
            raise RuleError(self.name, f"cannot evaluate: {exc}") from exc
        return deadline

    def window_values(self, values: Mapping[str, object], now: datetime) -> list[tuple[str, object]]:
        """Each windowed aggregate of the rule (canonical text) and its value at `now`, for a `why`."""
        return [(window_text(c.node), c.aggregate(values, now)) for c in self._windowed]

    @property
    def canonical_text(self) -> str:
        """Normalised text (keywords lower-case, one spacing), e.g. to compare definitions versions."""
        return to_text(self.expr)


def parse_rule(
    name: str, text: str, fields: Mapping[str, FieldType], window_filters: WindowFilters | None = None
) -> Rule:
    """Parse and validate a rule; every problem raises RuleError naming the rule.

    `window_filters` allows windowed aggregates and says which filters and literals they accept."""
    expr = parse_expression(name, text)
    for leaf in leaves(expr):
        if isinstance(leaf, Windowed):
            check_windowed(name, leaf, window_filters)
        else:
            check_leaf(name, leaf, fields)
    falling = frozenset(
        leaf.field
        for leaf in leaves(expr)
        if not isinstance(leaf, Windowed) and fields[leaf.field] is FieldType.FALLING
    )
    return Rule(name, text, expr, falling)


def leaves(node: Node) -> Iterator[Compare | Membership | Within | Windowed]:
    """The comparisons of a rule's expression, in text order."""
    if isinstance(node, Not):
        yield from leaves(node.operand)
    elif isinstance(node, And | Or):
        for operand in node.operands:
            yield from leaves(operand)
    else:
        yield node


def _window(leaf: Within) -> timedelta:
    return timedelta(days=leaf.amount) if leaf.unit == "days" else timedelta(hours=leaf.amount)


def _compile(node: Node, falling: frozenset[str]) -> _Predicate:
    """Turn the AST into closures once, so evaluation does no tree walking or dispatch on node type."""
    if isinstance(node, Not):
        inner = _compile(node.operand, falling)
        return lambda v, now: not inner(v, now)
    if isinstance(node, And):
        return _all(tuple(_compile(operand, falling) for operand in node.operands))
    if isinstance(node, Or):
        return _any(tuple(_compile(operand, falling) for operand in node.operands))
    if isinstance(node, Windowed):
        return compile_windowed(node)[1]
    name = node.field
    if name in falling:  # the value at `now`, then an ordinary comparison
        compare = _compare("value", node.op, node.value)  # type: ignore[union-attr]
        return lambda v, now: (x := v.get(name)) is not None and compare({"value": x.at(now)}, now)
    if isinstance(node, Within):
        window = _window(node)
        return lambda v, now: (x := v.get(name)) is not None and now - x < window
    if isinstance(node, Membership):
        members = frozenset(node.values)
        if node.negated:
            return lambda v, now: (x := v.get(name)) is not None and x not in members
        return lambda v, now: (x := v.get(name)) is not None and x in members
    return _compare(name, node.op, node.value)


def _compare(name: str, op: str, literal: Value) -> _Predicate:
    if literal is None:
        if op == "==":
            return lambda v, now: v.get(name) is None
        return lambda v, now: v.get(name) is not None
    if op == "==":
        return lambda v, now: (x := v.get(name)) is not None and x == literal
    if op == "!=":
        return lambda v, now: (x := v.get(name)) is not None and x != literal
    if op == "<":
        return lambda v, now: (x := v.get(name)) is not None and x < literal
    if op == "<=":
        return lambda v, now: (x := v.get(name)) is not None and x <= literal
    if op == ">":
        return lambda v, now: (x := v.get(name)) is not None and x > literal
    return lambda v, now: (x := v.get(name)) is not None and x >= literal


def _all(predicates: tuple[_Predicate, ...]) -> _Predicate:
    if len(predicates) == 2:
        a, b = predicates
        return lambda v, now: a(v, now) and b(v, now)
    if len(predicates) == 3:
        a, b, c = predicates
        return lambda v, now: a(v, now) and b(v, now) and c(v, now)

    def every(v: Mapping[str, Any], now: datetime) -> bool:
        return all(predicate(v, now) for predicate in predicates)

    return every


def _any(predicates: tuple[_Predicate, ...]) -> _Predicate:
    if len(predicates) == 2:
        a, b = predicates
        return lambda v, now: a(v, now) or b(v, now)
    if len(predicates) == 3:
        a, b, c = predicates
        return lambda v, now: a(v, now) or b(v, now) or c(v, now)

    def some(v: Mapping[str, Any], now: datetime) -> bool:
        return any(predicate(v, now) for predicate in predicates)

    return some
