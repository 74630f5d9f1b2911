"""The synthetic generator: deterministic, contract-valid, time-sorted, realistic enough to segment."""

from __future__ import annotations

import gzip
import random
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from segmentation.events import EVENT_TYPES, InvalidEvent, parse_event
from streams.sample.generator import (
    MALFORMED_KINDS,
    SampleSpec,
    generate,
    malformed_line,
    recover_customer_id,
    write_jsonl,
)

SPEC = SampleSpec(customers=300, days=365, seed=42, erasure_share=0.01)
DIRTY = SampleSpec(customers=300, days=365, seed=42, erasure_share=0.01, malformed_share=0.03)
END = SPEC.start + timedelta(days=SPEC.days)


@pytest.fixture(scope="module")
def clean() -> list[bytes]:
    return list(generate(SPEC))


@pytest.fixture(scope="module")
def events(clean: list[bytes]) -> list[dict[str, object]]:
    decoded = [orjson.loads(line) for line in clean]
    assert all(isinstance(event, dict) for event in decoded)
    return decoded


@pytest.fixture(scope="module")
def dirty() -> list[bytes]:
    return list(generate(DIRTY))


def test_same_spec_gives_identical_bytes(clean: list[bytes], dirty: list[bytes]) -> None:
    assert list(generate(SPEC)) == clean
    assert list(generate(DIRTY)) == dirty
    assert list(generate(SampleSpec(customers=300, days=365, seed=43, erasure_share=0.01))) != clean


def test_every_valid_line_passes_the_contract(clean: list[bytes]) -> None:
    for line in clean:
        event = parse_event(line)
        assert event.occurred_at.tzinfo is not None
        assert SPEC.start <= event.occurred_at < END


def test_malformed_lines_fail_and_come_on_top_of_the_same_valid_stream(
    clean: list[bytes], dirty: list[bytes]
) -> None:
    valid: list[bytes] = []
    fields: Counter[str | None] = Counter()
    for line in dirty:
        try:
            parse_event(line)
        except InvalidEvent as exc:
            fields[exc.field] += 1
        else:
            valid.append(line)
    assert valid == clean  # the malformed share does not change the valid events
    bad = len(dirty) - len(valid)
    share = bad / len(dirty)
    print(f"\nmalformed: {bad} of {len(dirty)} lines = {share:.4f} (spec {DIRTY.malformed_share}); {fields}")
    assert abs(share - DIRTY.malformed_share) < 0.005
    # not JSON (no field), naive timestamp, negative amount, unknown type, schema version, missing fields.
    assert {None, "occurred_at", "amount", "type", "schema_version"} <= set(fields)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_every_malformed_kind_fails_parse_event(kind: str, events: list[dict[str, object]]) -> None:
    rng = random.Random(kind)
    by_type = {event["type"]: event for event in events}
    assert set(by_type) == set(EVENT_TYPES)
    for _ in range(20):
        for event in by_type.values():
            bad = malformed_line(kind, event, orjson.dumps(event), rng)
            with pytest.raises(InvalidEvent):
                parse_event(bad)


def test_malformed_share_zero_and_limit() -> None:
    spec = SampleSpec(customers=20, days=60, malformed_share=0.2, limit=250)
    lines = list(generate(spec))
    assert len(lines) == 250
    assert lines == list(generate(spec))[:250]


def test_events_sorted_by_time_and_ids_unique(events: list[dict[str, object]]) -> None:
    times = [datetime.fromisoformat(str(event["occurred_at"])) for event in events]
    assert times == sorted(times)
    ids = [str(event["event_id"]) for event in events]
    assert len(set(ids)) == len(ids)
    for event in events:
        customer = str(event["customer_id"])
        assert customer.startswith("c") and len(customer) == 7
        assert str(event["event_id"]).startswith(f"{SPEC.seed}-{customer}-")


def test_gzip_round_trip_is_deterministic(tmp_path: Path) -> None:
    spec = SampleSpec(customers=30, days=90, malformed_share=0.01)
    expected = list(generate(spec))
    plain, packed, again = tmp_path / "s.jsonl", tmp_path / "s.jsonl.gz", tmp_path / "t.jsonl.gz"
    assert write_jsonl(spec, plain) == len(expected)
    assert write_jsonl(spec, packed) == len(expected)
    assert write_jsonl(spec, again) == len(expected)
    assert plain.read_bytes() == b"\n".join(expected) + b"\n"
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    assert packed.read_bytes() == again.read_bytes()  # no mtime or name in the gzip header


def test_realistic_mix(events: list[dict[str, object]]) -> None:
    counts = Counter(str(event["type"]) for event in events)
    shares = {kind: counts[kind] / len(events) for kind in EVENT_TYPES}
    print(f"\n{len(events)} events, {SPEC.customers} customers, {SPEC.days} days")
    for kind, share in sorted(shares.items(), key=lambda item: -item[1]):
        print(f"  {kind:<18} {counts[kind]:>7} {share:7.2%}")
    bounds = {
        "email_sent": (0.20, 0.55),
        "web_visit": (0.15, 0.45),
        "app_session": (0.03, 0.25),
        "email_open": (0.04, 0.20),
        "purchase": (0.02, 0.12),
        "email_click": (0.005, 0.05),
        "loyalty": (0.005, 0.08),
        "refund": (0.0005, 0.01),
        "profile_update": (0.001, 0.02),
    }
    for kind, (low, high) in bounds.items():
        assert low <= shares[kind] <= high, (kind, shares[kind])
    assert all(counts[kind] > 0 for kind in EVENT_TYPES), counts
    assert counts["email_open"] < counts["email_sent"] and counts["email_click"] < counts["email_open"]
    assert counts["refund"] < counts["purchase"] * 0.1


def test_customers_behave_like_customers(events: list[dict[str, object]]) -> None:
    purchases: dict[str, list[datetime]] = defaultdict(list)
    orders: dict[str, Decimal] = {}
    profiled: set[str] = set()
    for event in events:
        customer = str(event["customer_id"])
        if event["type"] == "purchase":
            purchases[customer].append(datetime.fromisoformat(str(event["occurred_at"])))
            orders[str(event["order_id"])] = Decimal(str(event["amount"]))
        elif event["type"] == "refund":  # a refund is of an earlier order, for at most its amount
            assert Decimal(str(event["amount"])) <= orders[str(event["order_id"])]
        elif event["type"] == "profile_update":
            profiled.add(customer)
    customers = {str(event["customer_id"]) for event in events}
    assert len(customers) == SPEC.customers
    assert sum(len(times) >= 5 for times in purchases.values()) >= 0.15 * SPEC.customers
    assert 0.05 * SPEC.customers <= SPEC.customers - len(purchases) <= 0.3 * SPEC.customers  # prospects
    churned = [c for c, times in purchases.items() if len(times) >= 3 and END - times[-1] >= timedelta(180)]
    assert len(churned) >= 0.03 * SPEC.customers  # lifecycle must see at_risk and lost
    assert 0.45 <= len(profiled) / SPEC.customers <= 0.75
    baskets = sorted(orders.values())
    median = baskets[len(baskets) // 2]
    assert Decimal(20) <= median <= Decimal(100)
    assert all(amount == amount.quantize(Decimal("0.01")) for amount in baskets)


def test_erased_customers_go_silent(events: list[dict[str, object]]) -> None:
    erased: set[str] = set()
    for event in events:
        customer = str(event["customer_id"])
        assert customer not in erased, f"event after erasure: {event}"
        if event["type"] == "customer_erased":
            erased.add(customer)
    assert erased


def test_other_currency_uses_its_exponent() -> None:
    for line in generate(SampleSpec(customers=20, days=120, currency="JPY")):
        event = parse_event(line)
        amount = getattr(event, "amount", None)
        if amount is not None:
            assert amount == amount.to_integral_value()
            assert getattr(event, "currency", None) == "JPY"


def test_recover_customer_id() -> None:
    assert recover_customer_id(b'{"type":"x","customer_id":"c000042"}') == "c000042"
    assert recover_customer_id(b'{"type":"purchase","event_id":"1","customer_id":"c000007","occ') == "c000007"
    assert recover_customer_id(b'{"type":"purchase","event_id":"1"}') is None
    assert recover_customer_id(b"\xff garbage") is None
    assert recover_customer_id(b'{"customer_id": 5}') is None


@pytest.mark.parametrize(
    "changes",
    [
        {"customers": -1},
        {"start": datetime(2026, 1, 1)},
        {"malformed_share": 0.6},
        {"currency": "eur"},
        {"erasure_share": 2.0},
        {"limit": -1},
    ],
)
def test_spec_validation(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SampleSpec(**changes)  # type: ignore[arg-type]
