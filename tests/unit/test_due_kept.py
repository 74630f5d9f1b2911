"""A write from the state last written says whether its due time is the stored one, and the commit script's
part carries it as '=' (commit.lua may then leave the customer's due entry as it is; tests/contract/
test_due_index.py checks what the script does with it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from segmentation import CustomerState
from segmentation.state_mapping import state_to_mapping
from streams.store.commit_script import write_parts
from streams.store.writes import write_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(orders: int, due: datetime | None) -> CustomerState:
    return CustomerState("c1", orders=orders, first_seen_at=T0, clock=T0, next_due_at=due)


def test_an_unchanged_due_time_is_marked_only_from_the_state_last_written() -> None:
    due = T0 + timedelta(days=30)
    first, cached = write_for(state(1, due), dict(state_to_mapping(state(0, due))))  # a row read from Redis
    assert not first.due_kept
    kept, cached = write_for(state(2, due), cached, None, state(1, due))
    assert kept.due_kept and kept.due_us == int(due.timestamp() * 1_000_000)
    assert write_parts([kept])[:3] == ["c1", "S", f"={kept.due_us}"]
    moved, cached = write_for(state(3, due + timedelta(days=1)), cached, None, state(2, due))
    assert not moved.due_kept and write_parts([moved])[2] == str(moved.due_us)
    none_kept, _ = write_for(state(4, None), write_for(state(3, None), cached, None, state(2, due))[1], None,
                             state(3, None))  # fmt: skip
    assert none_kept.due_kept and write_parts([none_kept])[2] == "="  # no due time, as before
    gone, _ = write_for(CustomerState("c1"), cached, None, state(3, due))  # erased: deleted, nothing kept
    assert gone.delete and not gone.due_kept
