"""What one customer's change writes to the store: the changed hash fields, next due time and index deltas.

Shared by the worker, replay and definition changes, so all three write exactly the same fields for the same
state (the field-level diff is why a write costs what changed, not the ~70 fields of a full mapping).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import datetime, timedelta
from typing import cast

from segmentation import CustomerState
from segmentation.instants import EPOCH, to_us
from segmentation.state_mapping import STATE, changed_parts, packed_bytes, readable_fields, stored_changes
from streams.store import history_format
from streams.store.indexes import ORDINAL, IndexDelta
from streams.store.port import CustomerWrite
from streams.store.written import KEPT_AS_IS, OFFSET, Known, Written, history_text

__all__ = ["Known", "Written", "from_us", "index_write", "write_for"]


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def index_write(
    index: IndexDelta, write: CustomerWrite, before: Mapping[str, str] | None, after: Mapping[str, str]
) -> None:
    """The read-side deltas of one customer write (membership, KPIs; an erasure wipes the history), and its
    transitions appended to its `history` field, in the write and in `after` (the mapping the worker caches
    for the next batch)."""
    cid = write.customer_id
    if write.erased_us is not None:
        index.erasures[cid] = write.erased_us
    if write.delete:
        index.erased(cid)
        if before:
            index.customer(cid, before, {})
        return
    moves = index.history.get(cid)
    if moves is not None or cid in index.history_reset:
        kept = None
        if cid not in index.history_reset and before:  # `write_for` left before's text in a Written
            kept = after.history if isinstance(after, Written) else history_text(before)
        text = history_format.appended_text(kept, moves or (), index.history_size)
        cast(MutableMapping[str, bytes], write.binary)[history_format.FIELD] = history_format.packed(text)
        if isinstance(after, Written):
            after.history = text
        else:  # a plain mapping (tools, tests) holds the field as the hash does
            cast(MutableMapping[str, str], after)[history_format.FIELD] = history_format.stored(text)
    changes = write.readable_changes
    if changes is None:
        changes = (*write.set_fields, *write.removed_fields)
    index.customer(cid, before, after, changes)


def write_for(
    state: CustomerState,
    before: Mapping[str, str] | None,
    origin: str | None = None,
    before_state: CustomerState | None = None,
) -> tuple[CustomerWrite, Mapping[str, str]]:
    """Only the fields that changed go to Redis; an erased (blank) customer is deleted, and its erasure time
    kept as a tombstone under a digest of its id (streams/store/erasures.py), so an event from before the
    erasure that arrives later has no effect, in any batch and after a restart.

    `before_state` is the state `before` was made from: when `before` is a `Written` mapping, only the
    fields whose value differs are encoded (the same changes as a diff of full mappings, proven in
    tests/unit/test_state_mapping_delta.py); otherwise the whole state is serialised and diffed."""
    # the tombstone follows erased_at wherever it changed, also for a customer back after its erasure in
    # the same batch: the namespace must not depend on where a batch ended
    erased = state.erased_at
    kept = before_state is not None and before_state.erased_at == erased
    erased_us = None if erased is None or kept else to_us(erased)
    if state.first_seen_at is None:
        return CustomerWrite(state.customer_id, delete=True, erased_us=erased_us), {}
    if before_state is not None and isinstance(before, Written):
        changed, removed, packed = changed_parts(before_state, state, before.packed)
        new = Written(before)
        new.packed = before.packed if packed is None else packed
        new.history_of(before)
        new.due_stored = True
        new.update(changed)
        for key in removed:
            del new[key]
    else:
        new = Written(readable_fields(state))
        new.packed = packed_bytes(state)
        old = before or {}
        new.history_of(old)  # not state: kept, appended to by `index_write`
        new.due_stored = True
        if ORDINAL in old:  # the commit script's, kept so the next commit can declare its chunk
            new[ORDINAL] = old[ORDINAL]
        changed = {k: v for k, v in new.items() if old.get(k) != v}
        removed = [k for k in old if k not in new and not k.startswith("_") and k not in KEPT_AS_IS]
        stored = old.packed if isinstance(old, Written) else old.get(STATE)
        if isinstance(stored, str):  # a row read from Redis holds `state` as text
            stored = stored.encode("utf-8", "surrogateescape")
        same = stored == new.packed
        packed = None if same else new.packed
    readable = (*changed, *removed)
    sets, deleted = stored_changes(changed, removed, before or {})
    if origin is not None:
        sets[OFFSET] = origin
    due = state.next_due_at  # the core caches next_due() in the state
    due_us = None if due is None else to_us(due)
    # from the state last written (a `Written`), an unchanged due time is already stored as it is
    kept_due = (
        before_state is not None
        and isinstance(before, Written)
        and before.due_stored
        and before_state.next_due_at == due
    )
    binary = {} if packed is None else {STATE: packed}
    cid = state.customer_id
    write = CustomerWrite(
        cid, sets, deleted, due_us=due_us, erased_us=erased_us, binary=binary, readable_changes=readable,
        due_kept=kept_due,
    )  # fmt: skip
    return write, new
