"""Money: every amount is converted once, on arrival, to integer minor units of the base currency.

Running sums stay exact integers (never binary floats). Conversion uses the fixed rates of the
definitions version (so a replay converts identically, whatever the market did since), multiplies
in Decimal and rounds half-to-even to the base currency's minor unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal

__all__ = ["MAX_AMOUNT_DIGITS", "UnknownCurrency", "to_base_minor"]

MAX_AMOUNT_DIGITS = 15
"""Whole digits of any amount, in events and in the definitions: with 4 places an amount fits 19 digits (a
SQL DECIMAL(19,4)); a threshold beyond it could never be crossed, and Decimal overflows working with it."""


class UnknownCurrency(ValueError):
    """An amount in a currency the definitions have no conversion rate for (the event cannot be applied)."""


def to_base_minor(amount: Decimal, currency: str, rates: Mapping[str, Decimal], base_exponent: int) -> int:
    """`amount` (major units of `currency`) in integer minor units of the base currency."""
    rate = rates.get(currency)
    if rate is None:
        raise UnknownCurrency(
            f"no conversion rate for currency {currency!r} in the definitions"
            f" (known: {', '.join(sorted(rates))})"
        )
    scaled = (amount * rate).scaleb(base_exponent)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))
