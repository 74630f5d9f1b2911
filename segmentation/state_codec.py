"""The customer state packed into one compact, versioned binary value (storage format 5, issue #13).

The ~70 text fields of storage format 1 made the customer hash ~2.2 KB and cost an encode per changed field.
Packed, the whole state is one msgpack array (msgspec, in C: ~1 µs either way) behind a format byte:

    format 5:  0x05 + escaped(n + window + zstd(msgpack array of every `CustomerState` field, in field
               order, `recent_ids` empty))

where the window is the state's `recent_ids` (the last event ids, 9 bytes each: `segmentation.duplicates`)
and n, 2 bytes big-endian, the number of ids in it. msgpack keeps every value exact: ints, floats as their
64 bits (-0.0, subnormals, infinities), times as msgpack timestamps (UTC, to the microsecond), nested tuples
(`audiences`, `categories`, `recent_orders`) as arrays. A state packed before a field was appended to
`CustomerState` decodes with that field's default (msgspec fills missing trailing fields).

Why zstd with a dictionary (`segmentation.compressed`): the rest of a packed state is ~450 bytes, too short
for a compressor to find repeats in it alone (-25 %), but most of it repeats *across* customers: the array's
layout, the `None`s and zeros, timestamp headers, definitions version, currency, channel, category and
audience names. A dictionary trained on generated states (`packed_state_5.zdict`) halves it, for ~2 µs to
compress and ~1 µs to decompress. It is frozen with format 5: another dictionary needs another format byte.
Why the window beside and not inside the compressed part: its digests are random bytes, which no compressor
shortens, and they were most of what zstd worked through at every write (an active customer's 64 ids: ~4 of
its ~7 µs). Formats 2, 3 and 4 (format 4: the window inside, as base64 text between separators; written up to
December 2026) are refused by `state_mapping` with the namespace's fix; an older segstream meeting format 5
says "storage format 5" and names `segstream replay`.

The escaping keeps NUL out of the value, as format 5 has since the store joined a batch's writes with NUL
into one script argument (it packs them as msgpack since 6 December 2026, which any byte fits; dropping the
escape changes the stored bytes, so it waits for the next format). msgpack is full of zeros (every 0
counter), so the bytes 0x00 and 0xC1 (a byte msgpack never uses as a type) are swapped first, then the rare
remaining NUL and the escape byte 0xD4 (fixext1, which msgspec never writes for a state) are written as
two-byte sequences. The same escape serves the window and the compressed bytes (~1 escape in 128 random
bytes).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import zstandard

from segmentation.compressed import LEVEL, Compressed
from segmentation.duplicates import KEY_SIZE
from segmentation.state import I_RECENT, CustomerState, state_of

__all__ = [
    "DICTIONARY", "FORMAT", "LEVEL", "StorageFormatError", "nul_free", "pack_fields", "pack_state",
    "raw_state", "unpack_state", "with_nul",
]  # fmt: skip

FORMAT: Final = 5  # the storage format; the first byte of every packed state
DICTIONARY: Final = "packed_state_5.zdict"  # in this package; frozen with FORMAT 5
_HEAD: Final = bytes([FORMAT])
_SWAP: Final = bytes.maketrans(b"\x00\xc1", b"\xc1\x00")
_ESC: Final = b"\xd4"
_ESC_NUL: Final = b"\xd4\x01"
_ESC_ESC: Final = b"\xd4\x02"
_MOST: Final = 0xFFFF  # ids a window may hold (the definitions allow 10,000)
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(CustomerState).decode
_codec = Compressed("segmentation", DICTIONARY)


class StorageFormatError(ValueError):
    """A stored state of another storage format: rebuild the namespace with `segstream replay`."""


def nul_free(raw: bytes) -> bytes:
    """msgpack `raw` without NUL, compactly (0x00 and 0xC1 swapped, then NUL and 0xD4 escaped)."""
    raw = raw.translate(_SWAP)
    if b"\x00" in raw or _ESC in raw:
        raw = raw.replace(_ESC, _ESC_ESC).replace(b"\x00", _ESC_NUL)
    return raw


def with_nul(raw: bytes) -> bytes:
    """The msgpack bytes `nul_free` was given; a bad escape raises ValueError.

    One split at the escape byte rather than counts and replaces of two-byte sequences: those scan the
    whole value once each (~5 µs for a state with a full event-id window, against ~1.5)."""
    if b"\x00" in raw:
        raise ValueError("an unescaped NUL")
    if _ESC in raw:
        parts = raw.split(_ESC)
        for i in range(1, len(parts)):
            part = parts[i]
            if part[:1] == b"\x01":
                parts[i] = b"\x00" + part[1:]
            elif part[:1] == b"\x02":
                parts[i] = _ESC + part[1:]
            else:
                raise ValueError("a bad escape sequence")
        raw = b"".join(parts)
    return raw.translate(_SWAP)


def raw_state(state: CustomerState) -> bytes:
    """The msgpack array the codec compresses (what the dictionary is trained on): the state without its
    duplicate window."""
    values = list(state)
    values[I_RECENT] = b""
    return _raw(values)


def _raw(values: list[Any]) -> bytes:
    try:
        return _encode(values)  # the same bytes as the NamedTuple's: both are msgpack arrays
    except (TypeError, OverflowError) as exc:  # a value msgpack cannot hold (an int beyond 64 bits, ...)
        raise ValueError(f"customer state cannot be packed: {exc}") from None


def pack_state(state: CustomerState) -> bytes:
    """The state as bytes without NUL; `unpack_state` gives back an equal state (floats bit-identical)."""
    return pack_fields(list(state))


def pack_fields(values: list[Any]) -> bytes:
    """`pack_state` of the state whose fields are `values`, without making that state (the list is
    changed: its window is taken out)."""
    window: bytes = values[I_RECENT]
    count, rest = divmod(len(window), KEY_SIZE)
    if rest or count > _MOST:
        raise ValueError(f"customer state cannot be packed: a duplicate window of {len(window)} bytes")
    values[I_RECENT] = b""
    return _HEAD + nul_free(count.to_bytes(2, "big") + window + _codec.pack(_raw(values)))


def unpack_state(packed: bytes) -> CustomerState:
    """The state `pack_state` packed; another format byte or a damaged value raises ValueError."""
    if not packed:
        raise ValueError("packed customer state is empty")
    head = packed[0]
    if head != FORMAT:
        raise StorageFormatError(
            f"packed customer state has storage format {head}, this segstream reads format"
            f" {FORMAT} only: rebuild the namespace with `segstream replay`"
        )
    try:
        raw = with_nul(packed[1:])
        end = 2 + int.from_bytes(raw[:2], "big") * KEY_SIZE
        if len(raw) < end:
            raise ValueError("the duplicate window is cut short")
        state = _decode(_codec.unpack(raw[end:]))
    except (msgspec.MsgspecError, zstandard.ZstdError, ValueError) as exc:
        raise ValueError(f"packed customer state is damaged: {exc}") from None
    if state.recent_ids:  # never packed inside: a crafted or damaged value (it would not pack back the same)
        raise ValueError("packed customer state is damaged: a duplicate window inside the compressed part")
    if end == 2:
        return state
    values = list(state)
    values[I_RECENT] = raw[2:end]
    return state_of(values)
