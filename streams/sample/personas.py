"""Who the synthetic customers are: latent personas, and the mutable state each simulated customer carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["PERSONAS", "PERSONA_CUM", "Customer", "Persona"]

_NEVER: Final = 1 << 62


@dataclass(frozen=True, slots=True)
class Persona:
    """A latent customer type: the generator never emits it, segmentation has to rediscover it."""

    name: str
    share: float
    orders: str  # "repeat", "once" or "never"
    purchase_gap_days: float  # mean days between orders (exponential), before an individual multiplier
    basket_median: float  # median basket in major currency units (lognormal)
    channels: tuple[float, float, float, float]  # preference weights for web, store, app, phone
    coupon_p: float
    open_p: float  # per email received
    click_p: float  # per open
    unsubscribe_p: float  # per email received
    web_gap_days: float
    app_share: float
    loyalty_share: float
    satisfaction: float  # mean survey score, 0-10
    churns: bool = False


#        name          share  orders    gap  basket channels (web, store, app, phone)  coupon
#        open  click  unsub   web_gap  app   loyalty  satisfaction  churns
PERSONAS: Final = (
    Persona("loyal",      0.10, "repeat",  14, 70, (0.40, 0.35, 0.22, 0.03), 0.10,
            0.45, 0.25, 0.001,  4, 0.60, 0.90, 8.6),
    Persona("regular",    0.25, "repeat",  40, 50, (0.45, 0.35, 0.15, 0.05), 0.15,
            0.30, 0.18, 0.002,  8, 0.40, 0.50, 7.6),
    Persona("occasional", 0.22, "repeat", 100, 40, (0.55, 0.30, 0.10, 0.05), 0.25,
            0.18, 0.12, 0.004, 18, 0.20, 0.20, 6.8),
    Persona("one_off",    0.15, "once",     0, 45, (0.60, 0.30, 0.08, 0.02), 0.35,
            0.10, 0.10, 0.010, 45, 0.05, 0.05, 6.0),
    Persona("churner",    0.15, "repeat",  22, 45, (0.50, 0.30, 0.15, 0.05), 0.20,
            0.30, 0.15, 0.003,  8, 0.30, 0.40, 5.4, churns=True),
    Persona("prospect",   0.13, "never",    0,  0, (1.00, 0.00, 0.00, 0.00), 0.00,
            0.20, 0.15, 0.006, 12, 0.15, 0.00, 7.0),
)  # fmt: skip
PERSONA_CUM: Final = tuple(sum(p.share for p in PERSONAS[: i + 1]) for i in range(len(PERSONAS)))


class Customer:
    """Mutable per-customer state of the simulation (slots: 100k customers stay a few tens of MB)."""

    __slots__ = (
        "app_gap", "app_user", "channel_cum", "churn_at", "cid", "click_p", "email_ok", "erased", "gap",
        "index", "member", "n", "new", "open_p", "orders", "persona", "points", "send_offset", "tier",
        "unsub_p", "web_gap",
    )  # fmt: skip

    def __init__(self, index: int, persona: Persona) -> None:
        self.index = index
        self.cid = f"c{index:06d}"
        self.persona = persona
        self.n = 0
        self.orders = 0
        self.points = 0
        self.tier: str | None = None
        self.erased = False
        self.churn_at = _NEVER
        self.new = False
        self.gap = 0.0
        self.channel_cum: tuple[float, ...] = ()
        self.email_ok = False
        self.app_user = False
        self.member = False
        self.open_p = self.click_p = self.unsub_p = 0.0
        self.web_gap = self.app_gap = 0.0
        self.send_offset = 0
