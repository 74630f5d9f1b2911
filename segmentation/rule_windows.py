"""Windowed aggregates of the rule language: `orders(last 30 days, channel == "web") >= 1`.

They read the customer's bounded record of recent orders (`recent_orders`), passed to a rule under the
name `SOURCE` as `(record, scale)` (scale: minor to major units, for `spend`). An order counts while
`now - at < window`, the same half-open window as `within`, so each counted order stops counting at
exactly `at + window`: these instants are the only ones at which the aggregate changes with time alone,
which is what `Rule.next_change` needs for exact time-driven exits.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from segmentation.rules_syntax import Value, Windowed

__all__ = ["AGGREGATES", "SOURCE", "CompiledWindow", "WindowFilters", "compile_windowed", "window_of"]

SOURCE = "recent_orders"
AGGREGATES = ("orders", "spend", "coupon_orders")
# filter name -> the literals it accepts (given by the definitions: channels, categories, true/false)
WindowFilters = Mapping[str, frozenset[Value]]

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge,
}  # fmt: skip


def window_of(node: Windowed) -> timedelta:
    return timedelta(days=node.amount) if node.unit == "days" else timedelta(hours=node.amount)


@dataclass(frozen=True, slots=True)
class CompiledWindow:
    """One windowed leaf, ready to evaluate: its aggregate, its deadlines and its comparison."""

    node: Windowed
    window: timedelta
    channel: str | None
    category: str | None
    coupon: bool | None

    def matching(self, record: tuple[Any, ...]) -> Iterator[Any]:
        channel, category, coupon = self.channel, self.category, self.coupon
        for order in record:
            if (
                (channel is None or order.channel == channel)
                and (category is None or category in order.categories)
                and (coupon is None or order.coupon is coupon)
            ):
                yield order

    def aggregate(self, values: Mapping[str, Any], now: datetime) -> int | Decimal:
        record, scale = values.get(SOURCE) or ((), Decimal(1))
        window, kind = self.window, self.node.field
        total = 0
        for order in self.matching(record):
            if now - order.at < window:
                if kind == "spend":
                    total += order.amount_minor
                elif kind == "orders" or order.coupon:
                    total += 1
        return Decimal(total) * scale if kind == "spend" else total

    def deadlines(self, values: Mapping[str, Any], now: datetime) -> Iterator[datetime]:
        """The instants after `now` at which an order leaves this window."""
        record, _ = values.get(SOURCE) or ((), None)
        window = self.window
        for order in self.matching(record):
            deadline: datetime = order.at + window
            if deadline > now:
                yield deadline


def compile_windowed(node: Windowed) -> tuple[CompiledWindow, Callable[[Mapping[str, Any], datetime], bool]]:
    """The leaf's evaluator and its predicate (the aggregate compared with the literal)."""
    filters = dict(node.filters)
    channel, category, coupon = filters.get("channel"), filters.get("category"), filters.get("coupon")
    compiled = CompiledWindow(
        node,
        window_of(node),
        channel if isinstance(channel, str) else None,
        category if isinstance(category, str) else None,
        coupon if isinstance(coupon, bool) else None,
    )
    compare, literal, aggregate = _OPS[node.op], node.value, compiled.aggregate
    return compiled, lambda v, now: compare(aggregate(v, now), literal)
