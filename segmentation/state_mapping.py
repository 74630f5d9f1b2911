"""The customer state as a Redis hash (storage format 2): the packed state plus a few readable fields.

| field | meaning |
|---|---|
| `state` | the whole state packed (`state_codec`: a format byte, 0x03, then msgpack compressed with zstd |
| | and a frozen dictionary; binary, no NUL; format 0x02, uncompressed, is read too) |
| `<grid>` | the segment of each grid, under the grid's name (`lifecycle`, `rfm`, `value`, `email`, |
| | `channel`, `age_band`, `region`, `satisfaction`, `category`, `promotion`, `clv`); empty: none |
| `audience:<name>` | `member` or `not_member` for each audience (the grid `audience:<name>`) |
| `orders` | purchases (F) |
| `monetary_minor`, `monetary` | net monetary, minor units / major units (decimal text), base currency |
| `last_purchase_at` | last purchase time (ISO 8601 UTC) |

The readable fields are what a personalisation service reads straight from Redis, with the texts of storage
format 1 (`state_fields`); a segment is stored under its grid's name (`stored_name`; the readers' view calls
it `segment:<grid>`, as this format stored it up to 4 December 2026: the prefixes cost ~117 bytes a
customer). Everything else (counters,
scores, declared profile, recent orders, the event-id window; `clock`, `definitions_version` and `currency`,
readable up to 3d981cf) is inside `state` and reaches readers through the read client and the HTTP API,
which decode it. Fields starting with `_` (`_offset`, `_kpi`, ...) and `history` belong to the store and are
ignored here.
A hash without `state` but with format-1 fields, or with segments named `segment:<grid>`, was written by
an earlier segstream: it is refused (`StorageFormatError`); namespaces are rebuilt by `segstream replay`,
never migrated.

The segments are stored once: `state` packs the state without the segments the readable grid fields
already hold (a segment and each audience's answer are ~40% of a packed state), and `state_from_mapping` takes
them back from those fields. Only a value whose readable text would not give it back (an empty-string segment,
audiences out of name order) stays in the packed state.

In Python the mapping is `str -> str`: `state` holds its bytes decoded as UTF-8 with `surrogateescape`
(lossless both ways), so the store encodes what it writes with that error handler and readers decode with it.
The write path never makes that text: `changed_parts` and `packed_bytes` give the packed state as bytes, which
the store sends as they are (the ~5 µs decode and ~3 µs encode of a ~800-byte state were about a third of the
CPU of a customer write on a live engagement stream).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import pairwise
from typing import Any

from segmentation.state import CustomerState, state_of
from segmentation.state_codec import StorageFormatError, pack_state, unpack_state
from segmentation.state_fields import FIELDS, READABLE, derived_fields

__all__ = [
    "AUDIENCE_FIELD", "FORMAT_1", "FORMAT_2", "GRID_FIELDS", "STATE", "StorageFormatError", "changed_fields",
    "changed_parts", "is_segment", "packed_bytes", "packed_text", "readable_fields", "state_from_mapping",
    "state_to_mapping", "stored_name", "stored_part",
]  # fmt: skip

STATE = "state"
_SEGMENT = "segment:"  # the readers' prefix of a grid's segment (`state_fields`), not stored
AUDIENCE_FIELD = "audience:"  # stored prefix of an audience's answer: the grid's name


def stored_name(key: str) -> str:
    """The hash field holding a readable field of the readers' view: `segment:<grid>` is `<grid>`."""
    return key[len(_SEGMENT) :] if key.startswith(_SEGMENT) else key


_POSITIONS = {attr: n for n, attr in enumerate(CustomerState._fields)}
_KEPT = tuple((stored_name(key), attr, encode) for key, attr, encode in FIELDS if key in READABLE)
GRID_FIELDS: frozenset[str] = frozenset(stored_name(key) for key, _, _ in FIELDS if key.startswith(_SEGMENT))


def is_segment(name: str) -> bool:
    """Whether a stored field holds a grid's segment (a grid's name, or `audience:<name>`)."""
    return name in GRID_FIELDS or name.startswith(AUDIENCE_FIELD)


# (position in the state tuple, key, encoder, whether two values of one type are equal exactly when their
# texts are; see `state_fields.FIELDS`): the readable fields that are state fields.
_INDEXED: tuple[tuple[int, str, Callable[[Any], str], bool], ...] = tuple(
    (_POSITIONS[attr], key, encode, encode is not repr) for key, attr, encode in _KEPT
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


def packed_bytes(state: CustomerState) -> bytes:
    """The bytes of the `state` field: the state without the segments the readable fields hold, packed."""
    return pack_state(stored_part(state))


def packed_text(state: CustomerState) -> str:
    """The value of the `state` field as text (UTF-8, `surrogateescape`)."""
    return packed_bytes(state).decode("utf-8", "surrogateescape")


def stored_part(state: CustomerState) -> CustomerState:
    """The state without the segments and audiences its readable fields give back (what `state` packs)."""
    values = list(state)
    for i, _ in _SEGMENTS:
        if values[i] != "":  # None or a name: its readable text gives it back ("" would read back as None)
            values[i] = None
    audiences = state.audiences
    if audiences and all(a[0] < b[0] for a, b in pairwise(audiences)):  # by name, each once
        values[_I_AUDIENCES] = ()
    return state_of(values)


def readable_fields(state: CustomerState) -> dict[str, str]:
    """Every field but `state` (whose bytes are `packed_bytes`)."""
    mapping = {key: encode(getattr(state, attr)) for key, attr, encode in _KEPT}
    for name, segment in state.audiences:
        mapping[AUDIENCE_FIELD + name] = segment
    mapping.update(derived_fields(state))
    return mapping


def state_to_mapping(state: CustomerState) -> dict[str, str]:
    """Every field, always (so an HSET of the whole mapping leaves no stale field behind)."""
    mapping = readable_fields(state)
    mapping[STATE] = packed_text(state)
    return mapping


def changed_fields(
    old: CustomerState, new: CustomerState, old_packed: str | None = None
) -> tuple[dict[str, str], list[str]]:
    """What differs between the mappings of two states, without serialising either in full: the keys whose
    text differs (with the new text) and the keys only `old` has. Exactly the diff of `state_to_mapping(old)`
    and `state_to_mapping(new)` (`old_packed`: the `state` text of `old`'s mapping, saves packing `old`)."""
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
    if (
        old.gross_minor != new.gross_minor
        or old.refunded_minor != new.refunded_minor
        or old.currency != new.currency
    ):
        before = derived_fields(old)
        changed.update((key, text) for key, text in derived_fields(new).items() if before[key] != text)
    packed = packed_bytes(new)
    if packed == (packed_bytes(old) if old_packed is None else old_packed):
        return changed, removed, None
    return changed, removed, packed


def state_from_mapping(mapping: Mapping[str, str]) -> CustomerState:
    """The state packed in `state`; the readable, `history` and `_` fields are ignored. A hash of storage
    format 1 raises `StorageFormatError`, a missing or damaged `state` ValueError."""
    text = mapping.get(STATE)
    if text is None:
        if any(key in mapping for key in _FORMAT_1):
            raise StorageFormatError(FORMAT_1)
        raise ValueError(f"customer hash has no {STATE!r} field")
    if _FORMAT_2 in mapping:
        raise StorageFormatError(FORMAT_2)
    try:
        packed = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError(f"customer hash field {STATE!r} is not a packed state") from None
    state = unpack_state(packed)
    values = list(state)
    for i, key in _SEGMENTS:
        if values[i] is None:
            values[i] = mapping.get(key) or None
    if not state.audiences:
        n = len(AUDIENCE_FIELD)
        values[_I_AUDIENCES] = tuple(
            sorted((k[n:], v) for k, v in mapping.items() if k.startswith(AUDIENCE_FIELD))
        )
    return state_of(values)
