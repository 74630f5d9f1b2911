"""The mapping a customer write made, kept for that customer's next write (`writes.write_for`)."""

from __future__ import annotations

from collections.abc import Mapping

from segmentation import CustomerState
from segmentation.state_mapping import STATE, is_readable, view_of
from streams.store import history_format

OFFSET = "_offset"  # the record a write came from (`write_for`'s origin), written by every write
KEPT_AS_IS = (history_format.FIELD, STATE)  # in a row read from Redis, never removed by a full diff
__all__ = ["KEPT_AS_IS", "Known", "Written", "as_written", "history_text"]


Known = tuple[CustomerState, Mapping[str, str]]
"""A customer's state with the mapping last written for it, so a batch serialises each state only once."""


class Written(dict[str, str]):
    """A mapping `write_for` made: exactly the view of the state it was written with (`readable_fields`:
    every readable field, those the hash leaves absent included), plus the store's `_` fields and its two
    binary fields: `state`, whose bytes are `packed`, and `history`, whose coded text (uncompressed,
    `history_format`) `index_write` left in `history` (None: no history yet). Neither is ever made text
    on the write path; so the next write of that customer encodes only the readable fields that changed
    (`changed_parts`), packs the state once and appends to its history without decompressing it.
    A row read from Redis is one too (`as_written`: its view, with `due_stored` False) unless it holds a
    field this version never writes; then it stays a plain view (`state_mapping.view_of`: every readable
    field, stored or not, `state` and `history` as text), diffed in full."""

    __slots__ = ("_blob", "_history", "due_stored", "packed")
    packed: bytes
    due_stored: bool  # the due index holds the due time of the state this mapping was made from
    _history: str | None
    _blob: str | None  # the stored field, not decompressed yet (`history` does it when first asked)

    @property
    def history(self) -> str | None:
        """Decompressed only when asked: most writes append nothing (an event that moves no segment)."""
        if self._blob is not None:
            self._history, self._blob = history_format.plain(self._blob), None
        return self._history

    @history.setter
    def history(self, text: str | None) -> None:
        self._history, self._blob = text, None

    def history_of(self, mapping: Mapping[str, str]) -> None:
        """Take `mapping`'s history as it is (a `Written`'s, decompressed or not; a row's stored field)."""
        if isinstance(mapping, Written):
            self._history, self._blob = mapping._history, mapping._blob
        else:
            self._history, self._blob = None, mapping.get(history_format.FIELD) or None

    @staticmethod
    def of(row: Mapping[str, str], due_stored: bool = False, packed: bytes | None = None) -> Written:
        """The `Written` form of a whole mapping (`state` as text, as `state_to_mapping` or Redis give it;
        `packed`: its bytes, when the caller has them already)."""
        written = Written({key: value for key, value in row.items() if key not in KEPT_AS_IS})
        written.packed = row[STATE].encode("utf-8", "surrogateescape") if packed is None else packed
        written.history_of(row)
        written.due_stored = due_stored
        return written

    def row(self) -> dict[str, str]:
        """The fields as the customer's hash holds them (`state` and `history` as text)."""
        row = {**self, STATE: self.packed.decode("utf-8", "surrogateescape")}
        if self._blob is not None:
            row[history_format.FIELD] = self._blob
        elif self._history is not None:
            row[history_format.FIELD] = history_format.stored(self._history)
        return row


def history_text(mapping: Mapping[str, str]) -> str | None:
    """The coded text of a mapping's history (None: none), decompressed from a row's field if need be."""
    if isinstance(mapping, Written):
        return mapping.history
    blob = mapping.get(history_format.FIELD)
    return history_format.plain(blob) if blob else None


def as_written(row: Mapping[str, str], state: CustomerState, packed: bytes | None = None) -> Written | None:
    """The view of a hash read back (`view_of`) as a `Written`, when the hash holds nothing beside readable
    fields, `state`, `history` and the store's `_` fields; else None (the caller keeps the plain view, whose
    full diff removes the other fields, as only it can). The view's readable fields are the state's whatever
    the hash holds, in both forms, so both write the same. `packed`: the bytes of `state`, when the caller has
    made them already."""
    for key in row:
        if key[:1] != "_" and key not in KEPT_AS_IS and not is_readable(key):
            return None
    view = view_of(row, state)
    view.pop(OFFSET, None)  # rewritten by every write: a cached mapping never holds it
    return Written.of(view, due_stored=False, packed=packed)
