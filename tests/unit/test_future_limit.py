"""An event dated too far after its record is a dead letter, decided from the record's own time: the same
verdict whenever the record is read (at once, after a backlog, by a replay), so a live worker's dead letters
are a function of the log (BRIEF 3.1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.worker.batch import Record, TooFarInFuture, decode
from streams.worker.future_limit import FutureLimit

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _record(offset: int, occurred_at: datetime, timestamp: int | None) -> Record:
    body = {
        "schema_version": 1,
        "type": "web_visit",
        "page": "/",
        "event_id": f"e{offset}",
        "customer_id": "c1",
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
    }
    return Record("events", 0, offset, b"c1", orjson.dumps(body), timestamp)


def _verdicts(records: list[Record], limit: FutureLimit | None) -> list[str]:
    """'applied' or the dead letter's message, per record in offset order."""
    events, dead = decode(records, limit)
    out = {rec.offset: "applied" for rec, _ in events}
    for d in dead:
        assert isinstance(d.error, TooFarInFuture)
        out[d.offset] = str(d.error)
    return [out[r.offset] for r in records]


def test_read_days_later_an_event_dated_two_days_after_its_record_is_still_a_dead_letter() -> None:
    """Before: held to the worker's clock, a worker catching up three days late applied it."""
    produced = NOW - 3 * DAY
    records = [_record(0, produced, _ms(produced)), _record(1, produced + 2 * DAY, _ms(produced))]
    verdicts = _verdicts(records, FutureLimit(NOW, DAY))
    assert verdicts[0] == "applied"
    assert verdicts[1] == (
        "web_visit occurred_at: 2026-12-06T12:00:00+00:00 is after 2026-12-05T12:00:00+00:00,"
        " the record's time plus SEGSTREAM_MAX_FUTURE_SKEW_S"
    )


def test_within_the_skew_of_its_record_an_event_is_applied_even_if_later_than_the_reader() -> None:
    produced = NOW - timedelta(minutes=5)
    records = [_record(0, produced + DAY - timedelta(seconds=1), _ms(produced))]
    assert _verdicts(records, FutureLimit(NOW, DAY)) == ["applied"]


def test_a_record_without_time_or_dated_after_the_reader_is_held_to_the_readers_clock() -> None:
    ahead = _ms(NOW + 30 * DAY)  # a producer's clock a month ahead does not widen the limit
    records = [
        _record(0, NOW + DAY + timedelta(seconds=1), None),
        _record(1, NOW + DAY + timedelta(seconds=1), -1),  # Kafka: a record without a timestamp
        _record(2, NOW + DAY + timedelta(seconds=1), ahead),
        _record(3, NOW + DAY, ahead),
    ]
    verdicts = _verdicts(records, FutureLimit(NOW, DAY))
    no_time = "the reader's clock (the record has no time) plus SEGSTREAM_MAX_FUTURE_SKEW_S"
    assert verdicts[0].endswith(no_time)
    assert verdicts[1].endswith(no_time)
    assert verdicts[2].endswith(
        "the reader's clock (the record's time is later) plus SEGSTREAM_MAX_FUTURE_SKEW_S"
    )
    assert verdicts[3] == "applied"


def test_without_a_limit_every_date_is_applied() -> None:
    """A replay-mode worker and a replay without --reject-future apply the log whatever its dates."""
    records = [_record(0, datetime(9000, 1, 1, tzinfo=UTC), _ms(NOW))]
    assert _verdicts(records, None) == ["applied"]


@given(
    st.lists(
        st.tuples(
            st.integers(-10 * 86_400, 10 * 86_400),  # event time - NOW, seconds
            st.one_of(st.none(), st.just(-1), st.integers(-10 * 86_400, 10 * 86_400)),  # record time - NOW
        ),
        min_size=1,
        max_size=12,
    ),
    st.integers(1, 3 * 86_400),
)
def test_each_verdict_is_its_own_records_whatever_else_is_in_the_batch(
    rows: list[tuple[int, int | None]], skew_s: int
) -> None:
    """The batch's shortcut (`floor`) never changes a verdict: each equals the rule applied to its record
    alone, in a batch of one."""
    skew = timedelta(seconds=skew_s)
    records = [
        _record(n, NOW + timedelta(seconds=at), ts if ts is None or ts == -1 else _ms(NOW) + ts * 1000)
        for n, (at, ts) in enumerate(rows)
    ]
    limit = FutureLimit(NOW, skew)
    together = _verdicts(records, limit)
    alone = [_verdicts([r], limit)[0] for r in records]
    assert together == alone
    for (at, ts), verdict in zip(rows, together, strict=True):
        trusted = ts is not None and ts != -1 and _ms(NOW) + ts * 1000 > 0
        reference = min(NOW, NOW + timedelta(seconds=ts)) if trusted and ts is not None else NOW
        assert (verdict == "applied") == (NOW + timedelta(seconds=at) <= reference + skew)


@pytest.mark.parametrize("ms", [None, -1, 0])
def test_a_record_without_a_time_is_held_to_the_readers_clock(ms: int | None) -> None:
    """Kafka's -1 is no time; 0 (the epoch) is counted as none too: no producer stamps it on purpose."""
    limit = FutureLimit(NOW, DAY)
    record = _record(0, NOW, ms)
    assert limit.reference(record) == NOW
    assert limit.of(record) == NOW + DAY


@pytest.mark.parametrize("ms", [253_402_300_800_000, 2**53, 2**63 - 1])
def test_a_record_time_beyond_the_calendar_is_not_trusted_and_never_stops_the_decode(ms: int) -> None:
    """Kafka before 4 accepts any CreateTime: year 10000 and later made `decode` raise OverflowError, for the
    whole batch and again after every restart (found in review)."""
    records = [_record(0, NOW + DAY, ms), _record(1, NOW + DAY + timedelta(seconds=1), ms)]
    verdicts = _verdicts(records, FutureLimit(NOW, DAY))
    assert verdicts[0] == "applied"
    assert verdicts[1].endswith(
        "the reader's clock (the record's time is later) plus SEGSTREAM_MAX_FUTURE_SKEW_S"
    )


def test_a_limit_beyond_the_calendar_is_no_limit() -> None:
    """A clock near year 9999 plus a century of skew: every date passes, nothing raises."""
    late = datetime(9999, 6, 1, tzinfo=UTC)
    limit = FutureLimit(late, timedelta(days=36_500))
    records = [_record(0, datetime(9999, 12, 31, tzinfo=UTC), None), _record(1, late, _ms(late) - 1000)]
    assert _verdicts(records, limit) == ["applied", "applied"]


@given(st.integers(-(2**63), 2**63 - 1), st.integers(-10 * 86_400, 10 * 86_400))
def test_any_int64_record_time_gives_a_verdict(ms: int, at: int) -> None:
    record = _record(0, NOW + timedelta(seconds=at), ms)
    verdict = _verdicts([record], FutureLimit(NOW, DAY))[0]
    trusted = 0 < ms <= _ms(NOW)
    reference = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms) if trusted else NOW
    assert (verdict == "applied") == (NOW + timedelta(seconds=at) <= reference + DAY)
