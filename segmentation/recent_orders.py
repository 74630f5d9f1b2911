"""The bounded record of a customer's recent orders: the windowed facts targeting rules read.

Each purchase adds one entry (time, order key, channel, coupon, amount in base minor units, categories),
kept in event-time order; only the `recent_orders` (definitions) most recent ones are kept, so a windowed
aggregate is exact while the customer has at most that many orders inside the window, and a lower bound
beyond (docs/purchase_depth.md). A late purchase takes its place by time (after the orders of the same
instant already kept); one older than every kept order of a full record is not kept. A refund naming an
order still in the record reduces that order's amount (never below zero); the order stays counted. A
purchase naming an order the record holds is refused (`OrderAlreadyCounted`): a producer that sends an
order again under a new event id (a webhook resent, a retry minting a new UUID) would count it twice.
"""

from __future__ import annotations

from bisect import bisect_right

from segmentation.state import RecentOrder

__all__ = ["OrderAlreadyCounted", "counted", "record_order", "refund_order"]


class OrderAlreadyCounted(ValueError):
    """A purchase of an order the customer's record of recent orders already holds: a dead letter, not a
    second order (duplicates are recognised by event id otherwise; this catches a new id on an old order)."""


def counted(record: tuple[RecentOrder, ...], key: str) -> RecentOrder | None:
    """The recorded order of that key, if the record still holds it."""
    for entry in record:
        if entry.key == key:
            return entry
    return None


def record_order(record: tuple[RecentOrder, ...], order: RecentOrder, size: int) -> tuple[RecentOrder, ...]:
    """The record with `order` in its place by time, the oldest forgotten beyond `size`."""
    if not record or order.at >= record[-1].at:  # in order: the common case
        kept = (*record, order)
    else:
        at = order.at
        position = bisect_right([entry.at for entry in record], at)
        kept = (*record[:position], order, *record[position:])
    return kept[-size:] if len(kept) > size else kept


def refund_order(
    record: tuple[RecentOrder, ...], key: str, amount_minor: int
) -> tuple[RecentOrder, ...] | None:
    """The record with the refund taken off the order `key` (the latest one of that key), else None."""
    for position in range(len(record) - 1, -1, -1):
        entry = record[position]
        if entry.key == key:
            reduced = entry._replace(amount_minor=max(0, entry.amount_minor - amount_minor))
            return (*record[:position], reduced, *record[position + 1 :])
    return None
