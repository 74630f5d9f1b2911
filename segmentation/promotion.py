"""Promotion sensitivity grid (how they buy): the share of a customer's orders placed with a coupon.

`promo_driven` (share >= promo_driven_share), `occasional` (above full_price_max_share), `full_price`
(at or below it; by default: never a coupon), `no_purchase`. Shares are compared exactly (integers), and a
refund does not change them: the order was placed with or without a coupon all the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from segmentation.config_reading import DefinitionsError, read_decimal
from segmentation.state import CustomerState

__all__ = ["SEGMENTS", "PromotionConfig", "classify", "explain"]

GRID = "promotion"
SEGMENTS = ("promo_driven", "occasional", "full_price", "no_purchase")


@dataclass(frozen=True, slots=True)
class PromotionConfig:
    promo_driven_share: Decimal = Decimal("0.5")
    full_price_max_share: Decimal = Decimal("0")
    # the shares as exact integer ratios, once: `classify` runs for every purchase
    promo_ratio: tuple[int, int] = field(init=False, repr=False, compare=False)
    full_price_ratio: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "promo_ratio", self.promo_driven_share.as_integer_ratio())
        object.__setattr__(self, "full_price_ratio", self.full_price_max_share.as_integer_ratio())
        if not 0 <= self.full_price_max_share < self.promo_driven_share <= 1:
            raise DefinitionsError(
                "promotion: need 0 <= full_price_max_share < promo_driven_share <= 1,"
                f" got {self.full_price_max_share}, {self.promo_driven_share}"
            )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> PromotionConfig:
        return cls(
            promo_driven_share=read_decimal(
                raw.get("promo_driven_share", "0.5"), "promotion.promo_driven_share"
            ),
            full_price_max_share=read_decimal(
                raw.get("full_price_max_share", "0"), "promotion.full_price_max_share"
            ),
        )


def classify(s: CustomerState, cfg: PromotionConfig) -> str:
    orders = s.orders
    if orders == 0:
        return "no_purchase"
    coupons = s.coupon_orders
    numerator, denominator = cfg.promo_ratio
    if coupons * denominator >= numerator * orders:
        return "promo_driven"
    numerator, denominator = cfg.full_price_ratio
    return "occasional" if coupons * denominator > numerator * orders else "full_price"


def explain(s: CustomerState, cfg: PromotionConfig, segment: str) -> dict[str, str]:
    rules = {
        "no_purchase": "no purchase yet",
        "promo_driven": f"coupon orders / orders >= {cfg.promo_driven_share}",
        "occasional": f"{cfg.full_price_max_share} < coupon orders / orders < {cfg.promo_driven_share}",
        "full_price": f"coupon orders / orders <= {cfg.full_price_max_share}",
    }
    return {"rule": rules[segment], "coupon_orders": str(s.coupon_orders), "orders": str(s.orders)}
