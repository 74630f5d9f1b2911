"""The dashboard's definitions preview compares a customer's segments in every grid `segstream definitions
diff` compares: with a list of grids of its own it left out category and promotion, and answered "nobody
moves" for a candidate that moved 123 customers in category (review of 7 December 2026)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from segmentation import CustomerState, Definitions, apply
from segmentation.events import parse_event
from streams.admin.definitions_change import segments_of as diff_segments
from streams.read.dashboard.preview import segments_of as preview_segments

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def _bought(definitions: Definitions) -> CustomerState:
    state = CustomerState.new("c1")
    for n in range(3):
        event = parse_event(
            {
                "event_id": f"e{n}", "type": "purchase", "customer_id": "c1", "schema_version": 1,
                "occurred_at": (T0 + timedelta(days=9 * n)).isoformat(), "order_id": f"o{n}", "amount": "40",
                "currency": "EUR", "channel": "web", "coupon_used": n == 0,
                "items": [{"sku": "s", "quantity": 1, "unit_price": "40", "category": "shoes"}],
            }
        )  # fmt: skip
        state = apply(state, event, definitions).state
    return state


@pytest.mark.parametrize("state", [CustomerState.new("c0"), _bought(Definitions.default())])
def test_the_preview_compares_the_grids_definitions_diff_compares(state: CustomerState) -> None:
    assert preview_segments(state) == diff_segments(state)
    assert {"category", "promotion"} <= set(preview_segments(state))


def test_the_clv_grid_once_the_customer_has_a_clv_segment() -> None:
    state = _bought(Definitions.default())._replace(seg_clv="high")
    assert preview_segments(state)["clv"] == "high" == diff_segments(state)["clv"]
