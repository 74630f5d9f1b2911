"""A customer's stored state, read back; a hash of another storage format is one clear line, not a traceback.

Namespaces are rebuilt by `segstream replay`, never migrated (segmentation/state_mapping.py): a hash written
by an earlier segstream (storage format 1) or a later one is refused naming the namespace and the fix. The CLI
exits with code 3 on it (`exit_code`), the HTTP API answers 409 with the line, the worker stops with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from segmentation import CustomerState
from segmentation.state_fields import state_fields
from segmentation.state_mapping import STATE, StorageFormatError, state_from_mapping, view_of
from streams.store.history_format import UnknownHistoryFormat
from streams.store.written import as_written

__all__ = ["StoredFormatError", "history_refused", "is_tombstone", "loaded", "readers_view", "stored_state"]


def is_tombstone(row: Mapping[str, str]) -> bool:
    """A row `load` made from an erased customer's tombstone (streams/store/erasures.py): its blank state
    alone, in no segment (a stored customer's hash always holds its readable fields beside `state`)."""
    return len(row) == 1 and STATE in row


class StoredFormatError(ValueError):
    """The namespace holds customer hashes of another storage format: rebuild it with `segstream replay`."""

    exit_code = 3


def stored_state(row: Mapping[str, str], namespace: str, packed: bytes | None = None) -> CustomerState:
    try:
        return state_from_mapping(row, packed)
    except StorageFormatError as exc:
        raise StoredFormatError(f"namespace {namespace!r}: {exc}") from None


def loaded(row: Mapping[str, str], namespace: str) -> tuple[CustomerState, dict[str, str]]:
    """A hash read back for a write: its state and its view (`state_mapping.view_of`, what the next write
    diffs and membership follows); a tombstone's view is empty.

    Why a `Written` view where the hash holds nothing beside readable fields, `state`, `history` and the
    store's `_` fields (`written.as_written`): the next write of the customer then diffs the two states
    instead of the two serialised views, as for a customer the worker kept in memory (on a live stream whose
    population exceeds the state cache, most events). A hash holding another field (one an earlier version
    wrote) keeps the plain view, whose full diff removes it. The due time is written again either way (the
    due index is not read back), and the history is decompressed only when a transition appends to it (so
    a damaged history field stops the batch that appends to it, not every write of its customer)."""
    text = row.get(STATE)
    try:
        packed = None if text is None else text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        packed = None  # `state_from_mapping` says what is wrong with it
    state = stored_state(row, namespace, packed)
    if is_tombstone(row):
        return state, {}
    written = as_written(row, state, packed)
    return state, view_of(row, state) if written is None else written


def readers_view(row: Mapping[str, str], namespace: str) -> dict[str, str]:
    """Every field as readers know it (`state_fields`: storage-format-1 names and texts), decoded from the
    packed state, plus the store's own `_` fields."""
    view = state_fields(stored_state(row, namespace))
    view.update((key, value) for key, value in row.items() if key.startswith("_"))
    return view


@contextmanager
def history_refused(namespace: str, customer_id: str) -> Iterator[None]:
    """A `history` field, or the `state` read with it, of another format read inside: one line naming the
    fix (the CLI exits 3, the API answers 409), never a traceback and a 500."""
    try:
        yield
    except UnknownHistoryFormat as exc:
        where = f"namespace {namespace!r}, customer {customer_id!r}: {exc}"
        raise StoredFormatError(f"{where}; rebuild the namespace with `segstream replay`") from None
    except StorageFormatError as exc:  # the state read with it (`history_of`): as `stored_state` says it
        raise StoredFormatError(f"namespace {namespace!r}: {exc}") from None
