"""The customer state as a Redis hash (storage format 5): the packed state plus a few readable fields.

| field | meaning |
|---|---|
| `state` | the whole state packed (`state_codec`: a format byte, 0x05, the event-id window, msgpack + zstd |
| | and a frozen dictionary; binary, no NUL) |
| `<grid>` | the segment of each grid, under the grid's name (`lifecycle`, `rfm`, `value`, `email`, |
| | `channel`, `age_band`, `region`, `satisfaction`, `category`, `promotion`, `clv`); absent: none |
| `audience:<name>` | `member` for each audience the customer is in (the grid `audience:<name>`); absent: |
| | `not_member` (or not answered yet) |
| `orders` | purchases (F) |
| `monetary_minor` | net monetary, minor units of the base currency (M) |
| `last_purchase_at` | last purchase time, whole seconds since 1970-01-01 UTC (R); absent: none |

The readable fields are what a personalisation service reads straight from Redis. What would be empty, an
audience's `not_member` and the decimal `monetary` are not stored, and the time is an integer (Redis keeps
it in 4 bytes): ~110 bytes of a ~1.1 KB customer on an order-history import, for issue #13's 1 KB. A segment
is stored under its grid's name (`stored_name`; the readers' view calls it `segment:<grid>`). Everything
else (counters, scores, declared profile, recent orders, the event-id window, `clock`, `currency`, the exact
`last_purchase_at`) is inside `state` and reaches readers through the read client and the HTTP API, which
decode it. Fields starting with `_` (`_offset`, `_kpi`, ...) and `history` belong to the store.
A hash of an earlier layout (format 1: no `state`; segments named `segment:<grid>`; a packed state of format
2 or 3, beside the texts of those formats) is refused (`StorageFormatError`); namespaces are rebuilt by
`segstream replay`, never migrated.

In memory the store keeps a customer's *view* (`readable_fields`: every readable field, empty texts and
`not_member` answers included), so membership and KPIs follow one mapping whatever is stored; `stored_changes`
turns a change of the view into what the hash receives, and `view_of` makes the view of a hash read back.

The segments are stored once: `state` packs the state without what the readable fields give back (a segment
and each audience's answer are ~40% of a packed state), and `state_from_mapping` takes them back from those
fields. What the readable fields would not give back (an empty-string segment, a `not_member` or empty
answer, audiences out of name order) stays in the packed state.

In Python the mapping is `str -> str`: `state` holds its bytes decoded as UTF-8 with `surrogateescape`
(lossless both ways), so the store encodes what it writes with that error handler and readers decode with it.
The write path never makes that text: `changed_parts` and `packed_bytes` give the packed state as bytes, which
the store sends as they are (the ~5 µs decode and ~3 µs encode of a ~800-byte state were about a third of the
CPU of a customer write on a live engagement stream).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from itertools import pairwise
from typing import Any

from segmentation.instants import to_us
from segmentation.state import CustomerState, state_of
from segmentation.state_codec import FORMAT, StorageFormatError, pack_fields, unpack_state
from segmentation.state_fields import FIELDS, READABLE

__all__ = [
    "AUDIENCE_FIELD", "FORMAT_1", "FORMAT_2", "GRID_FIELDS", "NOT_MEMBER", "STATE", "VERBATIM",
    "StorageFormatError", "changed_fields", "changed_parts", "is_readable", "is_segment", "is_stored",
    "packed_bytes",
    "packed_text", "readable_fields", "state_from_mapping", "state_to_mapping", "stored_changes",
    "stored_name", "stored_part", "view_of",
]  # fmt: skip

STATE = "state"
_SEGMENT = "segment:"  # the readers' prefix of a grid's segment (`state_fields`), not stored
AUDIENCE_FIELD = "audience:"  # stored prefix of an audience's answer: the grid's name
NOT_MEMBER = "not_member"  # the answer an audience's field does not store (absent)
MONETARY = "monetary_minor"


def stored_name(key: str) -> str:
    """The hash field holding a readable field of the readers' view: `segment:<grid>` is `<grid>`."""
    return key[len(_SEGMENT) :] if key.startswith(_SEGMENT) else key


def _seconds(value: datetime | None) -> str:
    """Whole seconds since the epoch (floor): an integer Redis stores in a few bytes; "" for none."""
    return "" if value is None else str(to_us(value) // 1_000_000)


_POSITIONS = {attr: n for n, attr in enumerate(CustomerState._fields)}
_ENCODERS: dict[str, Callable[[Any], str]] = {"last_purchase_at": _seconds}
_KEPT = tuple(
    (stored_name(key), attr, _ENCODERS.get(key, encode)) for key, attr, encode in FIELDS if key in READABLE
)
GRID_FIELDS: frozenset[str] = frozenset(stored_name(key) for key, _, _ in FIELDS if key.startswith(_SEGMENT))
_READABLE_NAMES = frozenset((*(key for key, _, _ in _KEPT), MONETARY))
# the readers' fields (`state_fields` names) whose stored text, when present, is the readers' text and whose
# absence is "": a reader may take them from the hash without decoding `state` (export's fast path)
VERBATIM: frozenset[str] = frozenset(
    {key for key, _, _ in FIELDS if key in READABLE and key.startswith(_SEGMENT)} | {"orders", MONETARY}
)


def is_segment(name: str) -> bool:
    """Whether a stored field holds a grid's segment (a grid's name, or `audience:<name>`)."""
    return name in GRID_FIELDS or name.startswith(AUDIENCE_FIELD)


def is_readable(name: str) -> bool:
    """Whether a hash field is one of the readable fields (`readable_fields` names), of any state."""
    return name in _READABLE_NAMES or is_segment(name)


def is_stored(key: str, text: str) -> bool:
    """Whether the hash stores a readable field of the view with that text (empty texts and an audience's
    `not_member` are absent)."""
    return text != "" and not (text == NOT_MEMBER and key.startswith(AUDIENCE_FIELD))


# (position in the state tuple, key, encoder, whether two values of one type are equal exactly when their
# texts are; see `state_fields.FIELDS`; not for a time kept to the second): the readable state fields.
_INDEXED: tuple[tuple[int, str, Callable[[Any], str], bool], ...] = tuple(
    (_POSITIONS[attr], key, encode, encode is not repr and encode is not _seconds)
    for key, attr, encode in _KEPT
)
# (position in the state tuple, readable key) of each grid's segment; the audiences' position
_SEGMENTS = tuple((_POSITIONS[attr], key) for key, attr, _ in _KEPT if key in GRID_FIELDS)
_I_AUDIENCES = _POSITIONS["audiences"]
_FORMAT_1 = ("first_seen_at", "customer_id", "recent_event_ids")  # fields only a format-1 hash has
FORMAT_1 = (
    "customer hash is in storage format 1, written by an earlier segstream: "
    "rebuild the namespace with `segstream replay`"
)
_FORMAT_2 = "segment:lifecycle"  # up to 4 December 2026 every grid's segment was `segment:<grid>`, always
FORMAT_2 = (
    "customer hash names its segments `segment:<grid>`, written by an earlier segstream: "
    "rebuild the namespace with `segstream replay`"
)


def _earlier(head: int) -> str:
    return (
        f"customer hash is in storage format {head} (its packed state, and before format 4 its readable"
        " fields, are laid out otherwise), written by an earlier segstream: rebuild the namespace with"
        " `segstream replay`"
    )


def packed_bytes(state: CustomerState) -> bytes:
    """The bytes of the `state` field: the state without the segments the readable fields hold, packed."""
    return pack_fields(_stored_values(state))


def packed_text(state: CustomerState) -> str:
    """The value of the `state` field as text (UTF-8, `surrogateescape`)."""
    return packed_bytes(state).decode("utf-8", "surrogateescape")


def stored_part(state: CustomerState) -> CustomerState:
    """The state without what its readable fields give back (what `state` packs): the segments, and the
    audiences answered otherwise than `not_member` or empty, when they are in name order, each once."""
    return state_of(_stored_values(state))


def _stored_values(state: CustomerState) -> list[Any]:
    values = list(state)
    for i, _ in _SEGMENTS:
        if values[i] != "":  # None or a name: its readable text gives it back ("" would read back as None)
            values[i] = None
    audiences = state.audiences
    if audiences and all(a[0] < b[0] for a, b in pairwise(audiences)):  # by name, each once
        values[_I_AUDIENCES] = tuple(a for a in audiences if not is_stored(AUDIENCE_FIELD, a[1]))
    return values


def readable_fields(state: CustomerState) -> dict[str, str]:
    """The view: every readable field, stored or not (`is_stored`); `state` is `packed_bytes`."""
    mapping = {key: encode(getattr(state, attr)) for key, attr, encode in _KEPT}
    for name, segment in state.audiences:
        mapping[AUDIENCE_FIELD + name] = segment
    mapping[MONETARY] = str(state.monetary_minor)
    return mapping


def state_to_mapping(state: CustomerState) -> dict[str, str]:
    """Every field the hash stores (so an HSET of the whole mapping into a new key is the customer)."""
    mapping = {key: text for key, text in readable_fields(state).items() if is_stored(key, text)}
    mapping[STATE] = packed_text(state)
    return mapping


def view_of(row: Mapping[str, str], state: CustomerState) -> dict[str, str]:
    """The view of a hash read back (`state` decoded from it): `readable_fields`, plus the row's own
    fields (`state`, `history`, `_...`)."""
    view = {key: text for key, text in row.items() if key not in _READABLE_NAMES and not is_segment(key)}
    view.update(readable_fields(state))
    return view


def stored_changes(
    changed: Mapping[str, str], removed: Iterable[str], old: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """What the hash receives for a change of the view from `old`: the fields to set, and those to delete
    (stored in `old`'s hash, absent now)."""
    sets: dict[str, str] = {}
    deleted: list[str] = []
    for key, text in changed.items():
        if is_stored(key, text):
            sets[key] = text
        elif key in old and is_stored(key, old[key]):
            deleted.append(key)
    deleted.extend(key for key in removed if is_stored(key, old[key]))
    return sets, deleted


def changed_fields(
    old: CustomerState, new: CustomerState, old_packed: str | None = None
) -> tuple[dict[str, str], list[str]]:
    """What differs between the views of two states, without serialising either in full: the keys whose
    text differs (with the new text) and the keys only `old` has. Exactly the diff of `readable_fields` plus
    `state` (`old_packed`: the `state` text of `old`'s mapping, saves packing `old`)."""
    raw = None if old_packed is None else old_packed.encode("utf-8", "surrogateescape")
    changed, removed, packed = changed_parts(old, new, raw)
    if packed is not None:
        changed[STATE] = packed.decode("utf-8", "surrogateescape")
    return changed, removed


def changed_parts(
    old: CustomerState, new: CustomerState, old_packed: bytes | None = None
) -> tuple[dict[str, str], list[str], bytes | None]:
    """`changed_fields` with the state as bytes: the readable fields whose text differs (with the new text),
    the keys only `old` has, and the new `packed_bytes` when they differ from `old`'s (`old_packed`, or
    packed here), else None. Only the readable fields whose value differs are encoded; `new` is packed
    once."""
    changed: dict[str, str] = {}
    removed: list[str] = []
    if old is new:
        return changed, removed, None
    for i, key, encode, exact in _INDEXED:
        a, b = old[i], new[i]
        if a is b:
            continue
        if exact and type(a) is type(b):
            if a != b:
                changed[key] = encode(b)
            continue
        text = encode(b)
        if text != encode(a):
            changed[key] = text
    if old.audiences != new.audiences:
        before = {AUDIENCE_FIELD + name: segment for name, segment in old.audiences}
        after = {AUDIENCE_FIELD + name: segment for name, segment in new.audiences}
        changed.update((key, segment) for key, segment in after.items() if before.get(key) != segment)
        removed = [key for key in before if key not in after]
    if old.gross_minor != new.gross_minor or old.refunded_minor != new.refunded_minor:
        net = new.monetary_minor
        if net != old.monetary_minor:
            changed[MONETARY] = str(net)
    packed = packed_bytes(new)
    if packed == (packed_bytes(old) if old_packed is None else old_packed):
        return changed, removed, None
    return changed, removed, packed


def state_from_mapping(mapping: Mapping[str, str], packed: bytes | None = None) -> CustomerState:
    """The state packed in `state`, with the segments and audiences its readable fields give back; the
    figures, `history` and `_` fields are ignored. A hash of an earlier storage format raises
    `StorageFormatError`, a missing or damaged `state` ValueError. `packed`: the bytes of `state`, when
    the caller has made them already."""
    text = mapping.get(STATE)
    if text is None:
        if any(key in mapping for key in _FORMAT_1):
            raise StorageFormatError(FORMAT_1)
        raise ValueError(f"customer hash has no {STATE!r} field")
    if _FORMAT_2 in mapping:
        raise StorageFormatError(FORMAT_2)
    if packed is None:
        try:
            packed = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise ValueError(f"customer hash field {STATE!r} is not a packed state") from None
    if packed and packed[0] < FORMAT:
        raise StorageFormatError(_earlier(packed[0]))
    state = unpack_state(packed)
    values = list(state)
    for i, key in _SEGMENTS:
        if values[i] is None:
            values[i] = mapping.get(key) or None
    n = len(AUDIENCE_FIELD)
    answers = [(k[n:], v) for k, v in mapping.items() if k.startswith(AUDIENCE_FIELD)]
    if answers:
        packed_names = {name for name, _ in state.audiences}
        if any(name not in packed_names for name, _ in answers):  # else the packed tuple is whole
            values[_I_AUDIENCES] = tuple(sorted((*state.audiences, *answers)))
    return state_of(values)
