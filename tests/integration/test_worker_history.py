"""The worker on the real broker and Redis gives exactly what the pure core computes for the same events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
import pytest

from segmentation import CustomerState, Definitions, Transition, advance, apply, parse_event
from segmentation.state_mapping import state_to_mapping
from streams.bootstrap import worker_runtime
from streams.store.history_format import FIELD, decode, entry_of
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    read_topic,
    run_worker_until,
    stored_customers,
)
from tests.services import Services

pytestmark = pytest.mark.cluster  # make test runs these on a Redis Cluster too

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def ev(event_id: str, kind: str, customer: str, at: datetime, **fields: Any) -> bytes:
    body = {
        "event_id": event_id,
        "type": kind,
        "customer_id": customer,
        "occurred_at": at.isoformat(),
        "schema_version": 1,
        **fields,
    }
    return orjson.dumps(body)


def purchase(
    event_id: str, customer: str, at: datetime, amount: str = "40.00", channel: str = "web"
) -> bytes:
    return ev(
        event_id,
        "purchase",
        customer,
        at,
        order_id=f"o-{event_id}",
        amount=amount,
        currency="EUR",
        channel=channel,
    )


def expected(
    lines: list[bytes], definitions: Definitions
) -> tuple[dict[str, CustomerState], list[Transition]]:
    """The pure core over the same events, customer by customer in log order."""
    states: dict[str, CustomerState] = {}
    transitions: list[Transition] = []
    for line in lines:
        try:
            event = parse_event(line)
        except ValueError:
            continue
        state = states.get(event.customer_id) or CustomerState.new(event.customer_id)
        outcome = apply(state, event, definitions)
        states[event.customer_id] = outcome.state
        transitions += outcome.transitions
    return states, transitions


def public(mapping: dict[str, str]) -> dict[str, str]:
    """The state's fields: storage fields and the coded history left out (asserted on their own)."""
    return {k: v for k, v in mapping.items() if not k.startswith("_") and k != FIELD}


def history() -> list[bytes]:
    return [
        ev("a1", "web_visit", "alice", T0),
        purchase("a2", "alice", T0 + timedelta(days=1)),
        ev("b1", "email_sent", "bob", T0 + timedelta(days=1, hours=1)),
        ev("b2", "email_open", "bob", T0 + timedelta(days=1, hours=2)),
        purchase("a3", "alice", T0 + timedelta(days=20), amount="120.00", channel="store"),
        ev("c1", "profile_update", "carol", T0 + timedelta(days=21), birth_year=1980, region="north"),
        purchase("c2", "carol", T0 + timedelta(days=22), amount="15.00", channel="app"),
        ev("a4", "refund", "alice", T0 + timedelta(days=25), order_id="o-a3", amount="20.00", currency="EUR"),
        ev("c3", "survey_response", "carol", T0 + timedelta(days=23), score=9),
        purchase("b3", "bob", T0 + timedelta(days=30), amount="60.00"),
    ]


def test_scripted_history_matches_the_pure_core(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix)
    lines = history()
    want_states, want_transitions = expected(lines, Definitions.default())

    async def scenario() -> list[Any]:
        await produce(settings, lines, customer_key)
        await run_worker_until(
            settings, lambda: sum((o or -1) + 1 for o in applied_offsets(settings).values()) == len(lines)
        )
        return await read_topic(settings, settings.transitions_topic, len(want_transitions))

    records = asyncio.run(scenario())
    stored = stored_customers(settings)
    assert {cid: public(row) for cid, row in stored.items()} == {
        cid: state_to_mapping(s) for cid, s in want_states.items()
    }
    got = [orjson.loads(r.value) for r in records]
    for customer in want_states:
        mine = [g for g in got if g["subject"] == customer]
        want = [t for t in want_transitions if t.customer_id == customer]
        assert [g["id"] for g in mine] == [t.id for t in want], customer
        assert [g["data"] for g in mine] == [t.to_dict() for t in want]
        # the customer's history field: every transition, exactly, each with the id published on the topic
        entries, trimmed = decode(stored[customer][FIELD])
        assert (entries, trimmed) == ([entry_of(t) for t in want], False)
        assert [e.transition_id(customer) for e in entries] == [g["id"] for g in mine]
        assert [e.cause for e in entries] == [g["data"]["cause"] for g in mine]
    assert {r.key for r in records} == {c.encode() for c in want_states}
    first = got[0]
    assert first["specversion"] == "1.0" and first["type"] == "io.segstream.segment.transition.v1"


def test_replay_mode_moves_a_silent_customer_to_at_risk_at_the_exact_due_time(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """The partition's event-time watermark drives time: another customer's later events move it on."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1)
    definitions = Definitions.default()
    lines = [purchase("q1", "quiet", T0)] + [
        ev(f"n{i}", "web_visit", "noisy", T0 + timedelta(days=10 * i)) for i in range(1, 13)
    ]
    first = apply(CustomerState.new("quiet"), parse_event(lines[0]), definitions)
    timeline = first.transitions + advance(first.state, T0 + timedelta(days=120), definitions).transitions
    want = [t for t in timeline if t.grid == "lifecycle"]
    assert [t.to_segment for t in want][-1] == "at_risk"

    async def scenario() -> list[Any]:
        await produce(settings, lines, customer_key)
        await run_worker_until(
            settings,
            lambda: stored_customers(settings).get("quiet", {}).get("lifecycle") == "at_risk",
        )
        return await read_topic(settings, settings.transitions_topic)

    got = [orjson.loads(r.value) for r in asyncio.run(scenario())]
    lifecycle = [g["data"] for g in got if g["subject"] == "quiet" and g["data"]["grid"] == "lifecycle"]
    assert lifecycle == [t.to_dict() for t in want]
    at_risk = lifecycle[-1]
    assert at_risk["cause"] == "time"
    assert at_risk["effective_at"] == want[-1].to_dict()["effective_at"]


def test_live_mode_moves_a_silent_customer_at_the_due_time_by_wall_clock(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """No event after the purchase: the wall clock passing last purchase + 90 days makes it at_risk."""
    settings = make_settings(services, topic_name, redis_prefix, mode="live")
    definitions = Definitions.default()
    now = datetime.now(UTC)
    bought = now - timedelta(days=90) + timedelta(seconds=3)  # at_risk becomes due 3 s from now
    line = purchase("l1", "lively", bought.replace(microsecond=0))
    state = apply(CustomerState.new("lively"), parse_event(line), definitions).state

    async def scenario() -> list[Any]:
        await produce(settings, [line], customer_key)
        await run_worker_until(
            settings,
            lambda: stored_customers(settings).get("lively", {}).get("lifecycle") == "at_risk",
            timeout=60,
        )
        return await read_topic(settings, settings.transitions_topic)

    got = [orjson.loads(r.value)["data"] for r in asyncio.run(scenario())]
    moves = [g for g in got if g["grid"] == "lifecycle" and g["to_segment"] == "at_risk"]
    assert len(moves) == 1
    assert moves[0]["cause"] == "time"
    expected_due = state.last_purchase_at + timedelta(days=90) if state.last_purchase_at else None
    assert expected_due is not None
    assert datetime.fromisoformat(moves[0]["effective_at"].replace("Z", "+00:00")) == expected_due


def test_a_cached_customer_whose_due_time_moves_earlier_is_swept_at_the_new_time(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    """The worker's second write of a customer starts from the state it last wrote (its cache), and the
    commit leaves a due entry marked unchanged as stored: a due time moved earlier must not be marked, or the
    sweep would find the customer only at its old, later time."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=1)
    definitions = Definitions.default()
    at = datetime(2025, 12, 20, 9, 0, tzinfo=UTC)
    stages = [
        [ev("m1", "email_sent", "mover", at), ev("m2", "email_open", "mover", at + timedelta(hours=1))],
        # born 1991: 35 from 1 January 2026, a new age band before the email appetence's due time (19 January)
        [ev("m3", "profile_update", "mover", at + timedelta(days=1), birth_year=1991)],
        [ev("n1", "web_visit", "noisy", datetime(2026, 1, 5, tzinfo=UTC))],
    ]
    state = CustomerState.new("mover")
    dues = []
    for line in stages[0] + stages[1]:
        state = apply(state, parse_event(line), definitions).state
        dues.append(state.next_due_at)
    assert dues[1] == datetime(2026, 1, 19, 10, 0, 0, 1, tzinfo=UTC)  # the email appetence's
    assert dues[2] == datetime(2026, 1, 1, tzinfo=UTC)  # earlier: the age band's
    want = advance(state, datetime(2026, 1, 5, tzinfo=UTC), definitions).transitions
    assert [(t.grid, t.to_segment) for t in want] == [("age_band", "age_35_44")]

    async def scenario() -> list[Any]:
        async with worker_runtime(settings) as runtime:
            task = asyncio.create_task(runtime.worker.run())
            try:
                last = -1
                for stage in stages:  # one commit each: the next write of the mover starts from the cache
                    await produce(settings, stage, customer_key)
                    last += len(stage)
                    await _until(task, partial(_applied_to, settings, last))
                await _until(task, lambda: stored_customers(settings)["mover"].get("age_band") == "age_35_44")
            finally:
                runtime.worker.stop()
                await asyncio.wait_for(task, 30)
        return await read_topic(settings, settings.transitions_topic)

    got = [orjson.loads(r.value) for r in asyncio.run(scenario())]
    moved = [g["data"] for g in got if g["subject"] == "mover" and g["data"]["grid"] == "age_band"]
    assert moved[-1] == want[0].to_dict()
    assert moved[-1]["cause"] == "time" and moved[-1]["effective_at"].startswith("2026-01-01T00:00:00")


def _applied_to(settings: Any, offset: int) -> bool:
    return applied_offsets(settings).get(0) == offset


async def _until(task: asyncio.Task[None], done: Callable[[], bool], timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not done():
        if task.done():
            task.result()
            raise AssertionError("worker stopped by itself")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached before timeout")
        await asyncio.sleep(0.1)
