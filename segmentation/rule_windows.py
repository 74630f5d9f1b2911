"""Windowed aggregates of the rule language: `orders(last 30 days, channel == "web") >= 1`.

They read the customer's bounded record of recent orders (`recent_orders`), passed to a rule under the
name `SOURCE` as `(record, scale)` (scale: minor to major units, for `spend`). An order counts while
`now - at < window`, the same half-open window as `within`, so each counted order stops counting at
exactly `at + window`: these instants are the only ones at which the aggregate changes with time alone,
which is what `Rule.next_change` needs for exact time-driven exits.
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
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
    """One windowed leaf, ready to evaluate: its aggregate, its deadlines and its comparison.

    `next_change` evaluates a rule at each deadline of one record: the matching orders' times and running
    totals are prepared once per record (kept for the last record seen), then each evaluation is a bisection.
    """

    node: Windowed
    window: timedelta
    channel: str | None
    category: str | None
    coupon: bool | None
    memo: list[Any] = field(default_factory=lambda: [None, ([], [0])], compare=False, repr=False)

    def prepared(self, record: tuple[Any, ...]) -> tuple[list[datetime], list[int]]:
        """The matching orders' times (ascending) and the running totals of the aggregate (0 first)."""
        memo = self.memo
        if memo[0] is record:
            return memo[1]  # type: ignore[no-any-return]
        channel, category, coupon, kind = self.channel, self.category, self.coupon, self.node.field
        times: list[datetime] = []
        totals, total = [0], 0
        for order in record:
            if (
                (channel is None or order.channel == channel)
                and (category is None or category in order.categories)
                and (coupon is None or order.coupon is coupon)
            ):
                times.append(order.at)
                if kind == "spend":
                    total += order.amount_minor
                elif kind == "orders" or order.coupon:
                    total += 1
                totals.append(total)
        memo[0], memo[1] = record, (times, totals)
        return times, totals

    def aggregate(self, values: Mapping[str, Any], now: datetime) -> int | Decimal:
        """Over the orders with `now - time < window` (time > now - window: a bisection)."""
        record, scale = values.get(SOURCE) or _NONE
        times, totals = self.prepared(record)
        total = totals[-1] - totals[bisect_right(times, now - self.window)]
        return Decimal(total) * scale if self.node.field == "spend" else total

    def deadlines(self, values: Mapping[str, Any], now: datetime) -> list[datetime]:
        """The instants after `now` at which a matching order leaves this window."""
        record, _ = values.get(SOURCE) or _NONE
        times, _ = self.prepared(record)
        window = self.window
        ends = []
        for at in times[bisect_right(times, now - window) :]:
            try:
                ends.append(at + window)
            except OverflowError:  # past datetime.max: never reached (segmentation/instants.after)
                break  # the times ascend: so do the rest
        return ends


_NONE: tuple[tuple[Any, ...], Decimal] = ((), Decimal(1))


@lru_cache(maxsize=1024)
def compile_windowed(node: Windowed) -> tuple[CompiledWindow, Callable[[Mapping[str, Any], datetime], bool]]:
    """The leaf's evaluator and its predicate (the aggregate compared with the literal); one per leaf, so
    that the predicate and `Rule.next_change` share the evaluator's prepared record."""
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
