"""Event values the definitions refuse: amounts above `max_amount`, event times before `earliest_event_time`.

Both bounds are part of the versioned definitions, so whether an event is applied depends on (event,
definitions version) only and a replay refuses exactly what the live worker refused. The worker dead-letters
the event; the state is left as it was. (Events too far in the *future* are the worker's concern: that check
is about the live wall clock, see `streams.worker.batch`.)
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from segmentation.definitions import Definitions
from segmentation.money import to_base_minor

__all__ = ["AmountAboveLimit", "EventTooEarly", "bounded_minor", "check_not_too_early"]


class AmountAboveLimit(ValueError):
    """An amount above the definitions' `max_amount`: a typo or a test order, never a sale to count (and
    a few million of them would overflow the 64-bit KPI counters of the read side)."""


class EventTooEarly(ValueError):
    """An event dated before the definitions' `earliest_event_time` (a zero or default date of a producer)."""


def bounded_minor(kind: str, amount: Decimal, currency: str, d: Definitions) -> int:
    """`amount` in base minor units, or AmountAboveLimit naming the field and the limit."""
    minor = to_base_minor(amount, currency, d.rates, d.minor_exponent)
    if minor > d.max_amount_minor:
        base = d.currency
        converted = "" if currency == base else f" ({Decimal(minor).scaleb(-d.minor_exponent)} {base})"
        raise AmountAboveLimit(
            f"{kind} amount: {amount} {currency}{converted} is above the limit of {d.max_amount} {base}"
            f" (max_amount of definitions {d.version})"
        )
    return minor


def check_not_too_early(kind: str, occurred_at: datetime, d: Definitions) -> None:
    """Called by `apply` for an event before `earliest_event_time`, but an erasure (a privacy request is
    honoured whatever its date)."""
    raise EventTooEarly(
        f"{kind} occurred_at: {occurred_at.isoformat()} is before {d.earliest_event_time.isoformat()}"
        f" (earliest_event_time of definitions {d.version})"
    )
