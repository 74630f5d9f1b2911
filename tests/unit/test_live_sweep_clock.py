"""A live worker's sweep must not move customers past the wall clock, whatever its partition's watermark says.

Live events are dated about now, and the worker accepts one up to SEGSTREAM_MAX_FUTURE_SKEW_S (a day by
default) ahead of its wall clock: a device clock running fast, or local time sent with a `Z` offset (UTC+9
as UTC is 9 h ahead). Such an event moves its partition's watermark; if the sweep took the watermark as its
clock, every other customer of the partition due before it would be moved on early (published before the
move's effective time), and their own events of the next hours, dated before that move, would arrive late:
a customer who buys before the due time would still be published active -> at_risk -> active.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from operator import attrgetter

import orjson

from segmentation import CustomerState, Definitions, Transition, advance, apply, parse_event
from streams.settings import Settings
from streams.store.port import InMemoryStateStore
from streams.worker.batch import BatchResult, Record
from streams.worker.loop import Worker
from tests.unit.seg_helpers import home_ids

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
QUIET, FAST = home_ids("q", 0, 2)  # both in partition 0


def _purchase(offset: int, customer: str, at: datetime) -> Record:
    body = {
        "event_id": f"e{offset}", "type": "purchase", "customer_id": customer, "occurred_at": at.isoformat(),
        "schema_version": 1, "order_id": f"o{offset}", "amount": "10.00", "currency": "EUR", "channel": "web",
    }  # fmt: skip
    return Record("events", 0, offset, customer.encode(), orjson.dumps(body))


class Capturing(Worker):
    published: list[Transition]

    async def _publish(self, result: BatchResult) -> None:
        self.published.extend(result.transitions)
        await super()._publish(result)


def _lifecycle(transitions: list[Transition], customer: str) -> list[tuple[str | None, str | None, str]]:
    return [
        (t.from_segment, t.to_segment, t.cause)
        for t in transitions
        if t.customer_id == customer and t.grid == "lifecycle"
    ]


def test_an_event_dated_ahead_of_the_wall_clock_does_not_age_the_partition() -> None:
    """QUIET bought 90 days minus 2 h ago (at_risk due in 2 h); FAST's event is dated 20 h ahead (within the
    allowed skew). A sweep now must not make QUIET at_risk; QUIET buys again 1 h later: never at_risk."""
    first = NOW - timedelta(days=90) + timedelta(hours=2)
    log = [_purchase(0, QUIET, first), _purchase(1, FAST, NOW + timedelta(hours=20))]
    again = _purchase(2, QUIET, NOW + timedelta(hours=1))
    wall = [NOW]

    async def scenario() -> list[Transition]:
        live = Settings(mode="live")
        worker = Capturing(live, Definitions.default(), InMemoryStateStore(), None, None, lambda: wall[0])
        worker.published = []
        await worker.own(0)
        await worker.process(0, log)
        await worker.sweep(force=True)  # the timer fires now
        wall[0] = NOW + timedelta(hours=1)
        await worker.process(0, [again])
        await worker.sweep(force=True)
        return worker.published

    published = asyncio.run(scenario())
    d = Definitions.default()
    expected = apply(CustomerState.new(QUIET), parse_event(log[0].value or b""), d)
    second = apply(expected.state, parse_event(again.value or b""), d)
    assert _lifecycle(published, QUIET) == _lifecycle([*expected.transitions, *second.transitions], QUIET)
    assert ("active", "at_risk", "time") not in _lifecycle(published, QUIET)


def test_the_live_sweep_still_moves_a_silent_customer_at_its_due_time() -> None:
    """The wall clock passing QUIET's due time moves it, with no event, at the exact due instant."""
    first = NOW - timedelta(days=90) + timedelta(hours=2)
    wall = [NOW]

    async def scenario() -> list[Transition]:
        worker = Capturing(Settings(mode="live"), Definitions.default(), InMemoryStateStore(), None, None,
                           lambda: wall[0])  # fmt: skip
        worker.published = []
        await worker.own(0)
        await worker.process(0, [_purchase(0, QUIET, first)])
        await worker.sweep(force=True)
        wall[0] = NOW + timedelta(hours=3)
        await worker.sweep(force=True)
        return worker.published

    published = asyncio.run(scenario())
    state = apply(CustomerState.new(QUIET), parse_event(_purchase(0, QUIET, first).value or b""),
                  Definitions.default()).state  # fmt: skip
    at_risk = [t for t in published if t.grid == "lifecycle" and t.to_segment == "at_risk"]
    due = advance(state, NOW + timedelta(hours=3), Definitions.default()).transitions
    # what the moves are (the worker publishes nothing here, so its transitions carry no id: NO_ID)
    fields = attrgetter("customer_id", "grid", "from_segment", "to_segment", "effective_at", "cause")
    assert [fields(t) for t in at_risk] == [fields(t) for t in due if t.to_segment == "at_risk"]
    assert at_risk[0].effective_at == first + timedelta(days=90)
