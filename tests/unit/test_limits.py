"""The definitions' bounds on event values (issue 11): `max_amount`, `earliest_event_time`; the end of time.

The core refuses such events (the worker dead-letters them) and leaves the state as it was; the bounds are
versioned with the definitions, so a replay refuses the same events.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from segmentation import AmountAboveLimit, CustomerState, DefinitionsError, EventTooEarly, advance, apply
from streams.worker.batch import Record, advance_all, apply_batch
from tests.unit.seg_helpers import DEFAULT, T0, day, definitions_with, ev, purchase, refund, run


def test_the_default_bounds() -> None:
    assert str(DEFAULT.max_amount) == "1000000000"
    assert DEFAULT.max_amount_minor == 100_000_000_000
    assert DEFAULT.earliest_event_time == datetime(1970, 1, 1, tzinfo=UTC)


def test_a_purchase_above_max_amount_is_refused_and_changes_nothing() -> None:
    state, _ = run([purchase(day(0), "10.00")])
    huge = purchase(day(1), "999999999999999.99")  # a valid amount for the event contract
    with pytest.raises(AmountAboveLimit) as refused:
        apply(state, huge, DEFAULT)
    assert str(refused.value) == (
        "purchase amount: 999999999999999.99 EUR is above the limit of 1000000000 EUR"
        " (max_amount of definitions 2026.12-1)"
    )
    assert run([purchase(day(1), "1000000000.00")], state=state)[0].gross_minor == 1000 + 100_000_000_000


def test_a_refund_above_max_amount_is_refused() -> None:
    state, _ = run([purchase(day(0), "10.00")])
    with pytest.raises(AmountAboveLimit, match=r"^refund amount: 1000000000.01 EUR is above the limit"):
        apply(state, refund(day(1), "1000000000.01"), DEFAULT)


def test_the_bound_is_in_the_base_currency_after_conversion() -> None:
    """1 USD = 0.92 EUR: 1,100,000,000 USD is 1,012,000,000 EUR (refused), 1,080,000,000 USD is not."""
    with pytest.raises(AmountAboveLimit, match=r"1100000000 USD \(1012000000.00 EUR\) is above the limit"):
        apply(CustomerState.new("c1"), purchase(day(0), "1100000000", "USD"), DEFAULT)
    state, _ = run([purchase(day(0), "1080000000", "USD")])
    assert state.gross_minor == 99_360_000_000


def test_max_amount_is_a_definition() -> None:
    small = definitions_with(max_amount="100")
    with pytest.raises(AmountAboveLimit, match="above the limit of 100 EUR"):
        apply(CustomerState.new("c1"), purchase(day(0), "100.01"), small)
    assert run([purchase(day(0), "100.00")], small)[0].orders == 1


def test_an_event_before_earliest_event_time_is_refused() -> None:
    state, _ = run([purchase(day(0))])
    for kind, fields in (("purchase", {"order_id": "o", "amount": "1", "currency": "EUR", "channel": "web"}),
                         ("web_visit", {})):  # fmt: skip
        old = ev(kind, datetime(1, 1, 1, tzinfo=UTC), **fields)
        with pytest.raises(EventTooEarly) as refused:
            apply(state, old, DEFAULT)
        assert str(refused.value) == (
            f"{kind} occurred_at: 0001-01-01T00:00:00+00:00 is before 1970-01-01T00:00:00+00:00"
            " (earliest_event_time of definitions 2026.12-1)"
        )
    assert run([purchase(datetime(1970, 1, 1, tzinfo=UTC))])[0].orders == 1  # the bound itself is accepted


def test_an_erasure_is_honoured_whatever_its_date() -> None:
    state, _ = run([purchase(day(0))])
    erased = apply(state, ev("customer_erased", datetime(1, 1, 1, tzinfo=UTC)), DEFAULT)
    assert erased.state.orders == 0


def test_earliest_event_time_is_a_definition() -> None:
    later = definitions_with(earliest_event_time="2026-01-01T00:00:00+00:00")
    with pytest.raises(EventTooEarly):
        apply(CustomerState.new("c1"), purchase(day(-1)), later)
    assert run([purchase(T0)], later)[0].orders == 1


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_amount", "0", "max_amount: must be > 0 and a whole number of minor units, got 0"),
        ("max_amount", "10.001", "max_amount: must be > 0 and a whole number of minor units, got 10.001"),
        ("max_amount", 1.5, 'max_amount: expected a decimal string such as "12.50", got 1.5'),
        ("earliest_event_time", "1970-01-01", "earliest_event_time: expected a date-time with an offset"),
        ("earliest_event_time", "yesterday", "earliest_event_time: not an ISO 8601 date-time: 'yesterday'"),
    ],
)
def test_bad_bounds_fail_at_load_time(key: str, value: Any, message: str) -> None:
    with pytest.raises(DefinitionsError, match=message.replace("(", r"\(").replace(".", r"\.")):
        definitions_with(**{key: value})


def test_a_customer_near_the_end_of_time_is_applied_and_swept_without_overflow() -> None:
    """A replay takes events whatever their date, and exports use sentinel dates such as 9999-11-15. A
    stage's end (last purchase + 90 days), an RFM breakpoint, an email score's crossing or a window's close
    past 9999-12-31 is never reached; computing it raised OverflowError, which dead-lettered every later
    event of the customer and stopped the sweeps of its partition."""
    from tests.unit.test_properties import RICH  # windowed audiences and `within` rules too

    SEGMENTS = [f for f in CustomerState._fields if f.startswith("seg_")]

    def swept(year: int) -> CustomerState:
        start = datetime(year, 11, 15, tzinfo=UTC)
        log = [purchase(start, event_id="p1"), ev("email_sent", start, event_id="s1")]
        log.append(ev("email_open", start + timedelta(days=1), event_id="o1"))
        records = [Record("events", 0, n, b"c1", None) for n in range(len(log))]
        batch = apply_batch(records, (list(zip(records, log, strict=True)), []), {}, RICH)
        assert batch.dead_letters == []
        return advance_all(batch.states, datetime(year, 12, 20, tzinfo=UTC), RICH).states["c1"][0]

    state, reference = swept(9999), swept(2026)  # the same customer, segments as in an ordinary year
    assert state.seg_lifecycle == "active"  # new ended on 9999-12-15
    assert [getattr(state, f) for f in SEGMENTS] == [getattr(reference, f) for f in SEGMENTS]
    assert state.audiences == reference.audiences
    end = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    later = [ev("web_visit", datetime(9999, 12, 20, 1, tzinfo=UTC)), purchase(end), ev("email_open", end)]
    for event in later:
        state = apply(state, event, RICH).state
    assert (state.orders, state.last_purchase_at, state.seg_lifecycle) == (2, end, "active")
    assert advance(state, end, RICH).transitions == ()  # at risk would be in 10000: never
