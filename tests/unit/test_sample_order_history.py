"""The sample generator's profiles: the default output is frozen; order-history has the import's shape."""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from segmentation import Definitions
from segmentation.events import parse_event
from streams.cli import main
from streams.sample.generator import PROFILE_DAYS, SampleSpec, generate

ORDERS = SampleSpec(customers=3000, days=548, seed=11, profile="order-history")


def digest(spec: SampleSpec) -> tuple[int, str]:
    lines = list(generate(spec))
    return len(lines), hashlib.sha256(b"".join(line + b"\n" for line in lines)).hexdigest()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            SampleSpec(customers=300, days=365, seed=42, erasure_share=0.01, malformed_share=0.03),
            (37854, "0ffff1b86a5dbf9c20ed62a699b9f5cece747d2fe8b562d03f196d4f8d7631a3"),
        ),
        (
            SampleSpec(customers=200, days=548, seed=7),
            (38179, "5c814bf8642eb54736a9f38446519b8a114e2e35f7b4e35f5a475ca0f78733a2"),
        ),
    ],
)
def test_default_profile_output_is_byte_identical_to_before_profiles(
    spec: SampleSpec, expected: tuple[int, str]
) -> None:
    """Digests taken at 0c6137a, before profiles existed: benchmarks and tests built on it keep their data."""
    assert digest(spec) == expected
    assert digest(SampleSpec(customers=200, days=548, seed=7, profile="default")) == (
        38179,
        "5c814bf8642eb54736a9f38446519b8a114e2e35f7b4e35f5a475ca0f78733a2",
    )


@pytest.fixture(scope="module")
def orders() -> list[dict[str, object]]:
    out = []
    for line in generate(ORDERS):
        parse_event(line)  # every line passes the contract
        event = orjson.loads(line)
        assert isinstance(event, dict)
        out.append(event)
    return out


def test_order_history_is_deterministic_by_seed() -> None:
    spec = SampleSpec(customers=200, days=548, seed=3, profile="order-history")
    assert list(generate(spec)) == list(generate(spec))
    other = SampleSpec(customers=200, days=548, seed=4, profile="order-history")
    assert list(generate(other)) != list(generate(spec))


def test_order_history_is_mostly_purchases_with_refunds_and_a_little_engagement(
    orders: list[dict[str, object]],
) -> None:
    counts = Counter(str(event["type"]) for event in orders)
    shares = {kind: n / len(orders) for kind, n in counts.items()}
    print(f"\n{len(orders)} events: {counts.most_common()}")
    assert 0.72 <= shares["purchase"] <= 0.85
    assert 0.02 <= shares["refund"] <= 0.06
    assert 0.01 <= shares["email_sent"] <= 0.1 and counts["email_open"] < counts["email_sent"]
    assert 0.01 <= shares["profile_update"] <= 0.08
    assert counts["loyalty"] == counts["app_session"] == 0  # an order export carries neither
    assert counts["web_visit"] <= counts["email_click"]  # only the landing of a newsletter click


def test_order_history_customers_are_mostly_new_with_a_few_long_tailed_orders(
    orders: list[dict[str, object]],
) -> None:
    per_customer: dict[str, list[datetime]] = defaultdict(list)
    for event in orders:
        if event["type"] == "purchase":
            per_customer[str(event["customer_id"])].append(datetime.fromisoformat(str(event["occurred_at"])))
    counts = sorted(len(times) for times in per_customer.values())
    customers = {str(event["customer_id"]) for event in orders}
    assert len(per_customer) >= 0.99 * len(customers)  # everyone buys
    assert len(customers) >= 0.99 * ORDERS.customers  # a few sign up too late to buy in the period
    mean = sum(counts) / len(counts)
    print(f"\norders per customer: mean {mean:.2f}, median {statistics.median(counts)}, max {counts[-1]}")
    assert 2.6 <= mean <= 3.3
    assert statistics.median(counts) == 1  # most buy once...
    assert counts[-1] >= 30 and sum(c >= 10 for c in counts) >= 0.03 * len(counts)  # ...a few very often
    first_orders = [min(times) for times in per_customer.values()]
    late = sum(first >= ORDERS.start + timedelta(days=60) for first in first_orders)
    assert late >= 0.6 * len(first_orders)  # most customers appear during the period: new
    last = max(max(times) for times in per_customer.values())
    assert ORDERS.start + timedelta(days=540) <= last < ORDERS.start + timedelta(days=548)


def test_order_history_orders_are_realistic(orders: list[dict[str, object]]) -> None:
    prefixes = {prefix for prefix, _ in Definitions.default().category.sku_prefixes}
    purchases = [event for event in orders if event["type"] == "purchase"]
    channels = Counter(str(event["channel"]) for event in purchases)
    assert set(channels) == {"web", "store", "app", "phone"} and channels["web"] > channels["phone"]
    coupons = sum(event["coupon_used"] is True for event in purchases) / len(purchases)
    assert 0.1 <= coupons <= 0.35
    skus = [str(item["sku"]) for event in purchases for item in event["items"]]  # type: ignore[attr-defined]
    assert {sku[:3] for sku in skus} == prefixes  # every item lands in a default category
    amounts = {str(event["order_id"]): float(str(event["amount"])) for event in purchases}
    for event in orders:
        if event["type"] == "refund":
            assert float(str(event["amount"])) <= amounts[str(event["order_id"])]
    assert 20 <= statistics.median(amounts.values()) <= 120


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile 'orders'"):
        SampleSpec(profile="orders")


def test_cli_writes_the_order_history_profile_over_18_months_by_default(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    assert main(["sample", "--profile", "order-history", "--customers", "40", "--output", str(path)]) == 0
    spec = SampleSpec(customers=40, days=PROFILE_DAYS["order-history"], seed=42, profile="order-history")
    assert PROFILE_DAYS["order-history"] == 548
    assert path.read_bytes() == b"".join(line + b"\n" for line in generate(spec))
