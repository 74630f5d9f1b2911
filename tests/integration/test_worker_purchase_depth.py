"""Purchase depth through the real worker on Kafka + Redis: category and promotion grids, windowed rules.

A scripted history (with a refund and a late purchase) gives, in Redis and on the transitions topic, exactly
what the pure core computes, and the hand-checked states, transitions and due instants below.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from segmentation import CustomerState, Definitions, Transition, advance, apply, parse_event
from segmentation.state_mapping import state_to_mapping
from streams.bootstrap import keyspace
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.due_index import due_at
from tests.integration.test_worker_history import T0, ev, public
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    customer_views,
    decoded,
    make_settings,
    produce,
    read_topic,
    run_worker_until,
    stored_customers,
)
from tests.services import Services

AUDIENCES = {
    "web_full_price_30d": 'orders(last 30 days, channel == "web") >= 1 and coupon_orders(last 30 days) == 0',
    "shoe_buyers": 'orders(last 365 days, category == "shoes") >= 2',
}


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def definitions_file(directory: Path) -> Path:
    """The packaged definitions plus the windowed audiences, keeping 5 recent orders per customer."""
    raw = yaml.safe_load((Path(__file__).parents[2] / "segmentation" / "definitions.yaml").read_text())
    raw["audiences"] = {**raw["audiences"], **AUDIENCES}
    raw["recent_orders"] = 5
    raw["version"] = "depth-test"
    path = directory / "definitions.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def order(event_id: str, customer: str, at: datetime, amount: str, channel: str, **extra: Any) -> bytes:
    return ev(event_id, "purchase", customer, at, order_id=f"o-{event_id}", amount=amount, currency="EUR",
              channel=channel, **extra)  # fmt: skip


def history() -> list[bytes]:
    return [
        order("d1", "dora", day(0), "80.00", "web", items=[{"sku": "SH-1", "quantity": 1}]),
        ev("n1", "web_visit", "noisy", day(1)),
        order("e1", "eve", day(1), "25.00", "store", coupon_used=True),  # no items: category none
        order(
            "d2",
            "dora",
            day(5),
            "100.00",
            "app",
            coupon_used=True,
            items=[{"sku": "AP-1", "quantity": 2, "unit_price": "50.00"}],
        ),
        order(
            "d3",
            "dora",
            day(20),
            "100.00",
            "web",
            items=[
                {"sku": "SH-9", "quantity": 1, "unit_price": "60.00"},
                {"sku": "x-1", "quantity": 1, "unit_price": "40.00", "category": "Beauty"},
            ],
        ),
        ev("d4", "refund", "dora", day(22), order_id="o-d3", amount="30.00", currency="EUR"),
        order("d5", "dora", day(3), "10.00", "web", items=[{"sku": "HM-1", "quantity": 1}]),  # late
        *[ev(f"n{i}", "web_visit", "noisy", day(10 * i)) for i in range(2, 7)],  # the watermark: day 60
    ]


def expected(lines: list[bytes], d: Definitions) -> tuple[dict[str, CustomerState], list[Transition]]:
    """The pure core: events in log order, then each customer's due changes up to the watermark, as the
    worker's sweep makes them (`streams.worker.batch.advance_all`)."""
    states: dict[str, CustomerState] = {}
    out: list[Transition] = []
    for line in lines:
        event = parse_event(line)
        outcome = apply(states.get(event.customer_id) or CustomerState.new(event.customer_id), event, d)
        states[event.customer_id] = outcome.state
        out += outcome.transitions
    watermark = max(parse_event(line).occurred_at for line in lines)
    for cid, state in states.items():
        while state.next_due_at is not None and state.next_due_at <= watermark:
            outcome = advance(state, state.next_due_at, d)
            state = outcome.state
            out += outcome.transitions
        states[cid] = state
    return states, out


def moves(transitions: list[dict[str, Any]], customer: str, grid: str) -> list[tuple[Any, ...]]:
    return [
        (t["from_segment"], t["to_segment"], t["effective_at"], t["cause"])
        for t in transitions
        if t["customer_id"] == customer and t["grid"] == grid
    ]


def iso(n: float) -> str:
    return day(n).isoformat()


def due_score(settings: Settings, customer: str) -> float | None:
    client = sync_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    try:
        return due_at(client, keyspace(settings), 0, customer)
    finally:
        client.close()


def test_purchase_depth_history_through_the_worker(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    path = definitions_file(tmp_path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1, definitions_file=path)
    definitions = Definitions.from_yaml(path)
    lines = history()
    want_states, want_transitions = expected(lines, definitions)

    async def scenario() -> list[Any]:
        await produce(settings, lines, customer_key)
        await run_worker_until(
            settings,
            lambda: (
                applied_offsets(settings).get(0) == len(lines) - 1
                and customer_views(settings).get("dora", {}).get("audience:web_full_price_30d")
                == "not_member"
                and decoded(stored_customers(settings)["dora"]).get("due:audiences") == iso(365)
            ),
        )
        return await read_topic(settings, settings.transitions_topic, len(want_transitions))

    records = asyncio.run(scenario())
    got = [orjson.loads(r.value)["data"] for r in records]
    stored = stored_customers(settings)

    # 1. exactly the pure core: every hash field, every transition (ids included), per customer in order
    assert {cid: public(row) for cid, row in stored.items()} == {
        cid: state_to_mapping(s) for cid, s in want_states.items()
    }
    for customer in want_states:
        assert [g for g in got if g["customer_id"] == customer] == [
            t.to_dict() for t in want_transitions if t.customer_id == customer
        ]

    # 2. the hand-checked story. Category: shoes 80; apparel 100 of 180 (0.56); shoes 140 of 280 (exactly
    # 0.5); the refund changes no category spend; the late home order (10, dated d3) makes it 140 of 290
    # (0.48 < 0.5): mixed, effective at the clock the state had reached (d22), flagged late.
    assert moves(got, "dora", "category") == [
        (None, "shoes", iso(0), "d1"),
        ("shoes", "apparel", iso(5), "d2"),
        ("apparel", "shoes", iso(20), "d3"),
        ("shoes", "mixed", iso(22), "d5"),
    ]
    late = next(t for t in got if t["grid"] == "category" and t["cause"] == "d5")["why"]
    assert (late["late"], late["occurred_at"], late["spend_minor_total"]) == ("true", iso(3), "29000")
    assert moves(got, "eve", "category") == [(None, "none", iso(1), "e1")]
    # Promotion: 0 of 1, 1 of 2 (>= 0.5), 1 of 3, and 1 of 4 after the late order (no change)
    assert moves(got, "dora", "promotion") == [
        (None, "full_price", iso(0), "d1"),
        ("full_price", "promo_driven", iso(5), "d2"),
        ("promo_driven", "occasional", iso(20), "d3"),
    ]
    assert moves(got, "eve", "promotion") == [(None, "promo_driven", iso(1), "e1")]
    # Web, no coupon in 30 days: in at d0, out with the coupon order of d5; in again by time at d35 (the
    # coupon order leaves, the web order of d20 is inside), out by time at d50 (the d20 order leaves).
    assert moves(got, "dora", "audience:web_full_price_30d") == [
        (None, "member", iso(0), "d1"),
        ("member", "not_member", iso(5), "d2"),
        ("not_member", "member", iso(35), "time"),
        ("member", "not_member", iso(50), "time"),
    ]
    assert moves(got, "eve", "audience:web_full_price_30d") == [(None, "not_member", iso(1), "e1")]
    # Two shoe orders in 365 days from d20 on; due out when the d0 order leaves, at d365
    assert moves(got, "dora", "audience:shoe_buyers") == [
        (None, "not_member", iso(0), "d1"),
        ("not_member", "member", iso(20), "d3"),
    ]
    exit_why = [t for t in got if t["grid"] == "audience:web_full_price_30d" and t["cause"] == "time"][-1][
        "why"
    ]
    assert exit_why['orders(last 30 days, channel == "web")'] == "0"
    assert exit_why["coupon_orders(last 30 days)"] == "0"

    dora = decoded(stored["dora"])
    assert dora["categories"] == '[["apparel",1,10000],["beauty",1,4000],["home",1,1000],["shoes",2,14000]]'
    assert dora["recent_orders"] == (  # in event-time order, the late one in its place
        f'[["{iso(0)}","o-d1","web",0,8000,["shoes"]],'
        f'["{iso(3)}","o-d5","web",0,1000,["home"]],'
        f'["{iso(5)}","o-d2","app",1,10000,["apparel"]],'
        f'["{iso(20)}","o-d3","web",0,7000,["beauty","shoes"]]]'  # 100 - the 30 refunded
    )
    assert (dora["coupon_orders"], dora["orders"], dora["segment:category"], dora["segment:promotion"]) == (
        "1",
        "4",
        "mixed",
        "occasional",
    )
    assert dora["due:audiences"] == iso(365)  # shoe_buyers: the d0 shoe order leaves its 365 days
    assert dora["next_due_at"] == iso(110)  # before that: at_risk, 90 days after the d20 purchase
    assert due_score(settings, "dora") == day(110).timestamp() * 1_000_000  # the due index agrees
