"""The customer's ordinal (`_o`, given by the commit script) follows the worker's cached mapping, so the next
commit can declare its map chunk (streams/store/membership.py `declared_chunks`); it is never written back."""

from __future__ import annotations

from datetime import UTC, datetime

from segmentation import CustomerState
from segmentation.state_mapping import state_to_mapping
from streams.store.indexes import IndexDelta
from streams.store.membership import declared_chunks
from streams.store.writes import write_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(orders: int) -> CustomerState:
    return CustomerState("c1", orders=orders, first_seen_at=T0, clock=T0)


def test_a_row_read_from_redis_passes_its_ordinal_to_the_cached_mapping_unwritten() -> None:
    row = dict(state_to_mapping(state(1))) | {"_o": "300"}
    write, mapping = write_for(state(2), row)
    assert mapping["_o"] == "300"
    assert "_o" not in write.set_fields and "_o" not in write.removed_fields
    write, again = write_for(state(3), mapping, None, state(2))  # the cached mapping keeps it
    assert again["_o"] == "300" and "_o" not in write.set_fields


def test_declared_chunks_are_those_of_the_erased_the_recreated_and_the_ordinals_to_give() -> None:
    delta = IndexDelta()
    for cid, ordinal in (("erased", 5), ("recreated", 300), ("moved", 700)):
        delta.befores[cid] = {"_o": str(ordinal)}
    for cid in ("recreated", "new1", "new2"):
        delta.began(cid)
    assert declared_chunks(delta, ["erased"], 255) == {0, 1, 2}  # erased 5, recreated 300; new 255-257
    assert declared_chunks(delta, ["erased"], None) == {0, 2}  # counter unknown: the script names the rest
    assert declared_chunks(IndexDelta(), [], 10) == set()
    delta.undeclared.add(9)  # named by a refused attempt: declared by every retry of the batch
    assert declared_chunks(delta, ["erased"], None) == {0, 2, 9}
