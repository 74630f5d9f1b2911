"""How the Redis store speaks to commit.lua: the customer writes and index ops packed into its arguments
(msgpack arrays of strs), and its refusals mapped to the port's exceptions."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Final

from msgspec import Raw
from msgspec.msgpack import Encoder
from redis.exceptions import ResponseError

from streams.store.indexes import IndexDelta
from streams.store.keys import KeySpace
from streams.store.port import CommitRefused, CustomerWrite, Fenced, Rewound, StaleOffset

_encode: Final = Encoder().encode
REFUSALS = ("WRONGTYPE", "NOTINT", "OVERFLOW")  # the script's checks of what the keys hold (commit.lua)
# ordinal (`o:`) and due (`q:`) chunks needed and not declared (commit.lua); `_`: the due chunk `q:_`
CHUNKS = re.compile(r"CHUNKS (\d+)((?: (?:\d+|_))+)$")


def refusal(p: int, exc: ResponseError) -> Exception:
    """The store's exception for a commit the script refused (nothing was written)."""
    message = str(exc)
    if message.startswith("FENCED"):
        return Fenced(f"partition {p}: {message}")
    if message.startswith("REWOUND"):
        return Rewound(f"partition {p}: {message}")
    if message.startswith("STALE"):
        return StaleOffset(f"partition {p}: {message}")
    if message.startswith(REFUSALS):
        return CommitRefused(f"partition {p}: commit refused, nothing written: {message}")
    return exc


def bits_entries(index: IndexDelta, p: int, ks: KeySpace, slot: Callable[[str], int]) -> list[str]:
    """The membership op's entries (commit.lua BITS): the lifetimes begun, in log order, then per customer
    the bitmaps whose bit it clears ('-k') and sets ('+k'); key indexes only, never an id."""
    moves: dict[str, list[str]] = {}
    for sign, members in (("-", index.members_remove), ("+", index.members_add)):
        for (grid, segment), ids in members.items():
            bit = f"{sign}{slot(ks.members(p, grid, segment))}"
            for cid in ids:
                entry = moves.get(cid)
                if entry is None:
                    moves[cid] = [bit]
                else:
                    entry.append(bit)
    out: list[str] = []
    customer = ks.customer
    for cid in index.created:
        out += ("A", str(slot(customer(p, cid))))
    for cid, bits in moves.items():
        out += ("M", str(slot(customer(p, cid))), str(len(bits)))
        out += bits
    return out


def write_parts(writes: Sequence[CustomerWrite]) -> list[str | bytes]:
    """Every customer write as the script's parts: id, kind, due, n_set, n_removed, pairs, removed names; the
    binary fields (`CustomerWrite.binary`: packed state, history) are the last pairs, their values bytes.
    Sent as one script argument (`pack`): redis-py encodes each argument in Python (~1 µs each), and a batch
    has hundreds of customers with dozens of changed fields."""
    parts: list[str | bytes] = []
    add = parts.extend
    for w in writes:
        due = "" if w.due_us is None else str(w.due_us)
        if w.due_kept:
            due = "=" + due  # unchanged: commit.lua may leave its entry as it is
        if w.delete:
            add((w.customer_id, "D", due, "0", "0"))
            continue
        fields, binary = w.set_fields, w.binary
        add((w.customer_id, "S", due, str(len(fields) + len(binary)), str(len(w.removed_fields))))
        for item in fields.items():
            add(item)
        for pair in binary.items():
            add(pair)
        add(w.removed_fields)
    return parts


def encoded(part: str | bytes) -> bytes:
    """A part as the script reads it: text as UTF-8 (`surrogateescape`: a `state` given as text is bytes)."""
    return part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part


def _raw(data: bytes) -> Raw:
    """`data` as a msgpack str, whatever its bytes: Redis's cmsgpack reads no bin type, and Lua strings are
    bytes anyway."""
    n = len(data)
    if n < 32:
        head = bytes((0xA0 | n,))
    elif n < 0x100:
        head = b"\xd9" + n.to_bytes(1, "big")
    elif n < 0x10000:
        head = b"\xda" + n.to_bytes(2, "big")
    else:
        head = b"\xdb" + n.to_bytes(4, "big")
    return Raw(head + data)


def pack(parts: Sequence[str | bytes]) -> bytes:
    """The parts as one script argument: a msgpack array of strs, which commit.lua takes apart with Redis's
    own `cmsgpack.unpack`, in C (~2x less script time than splitting NUL-joined parts in Lua, and no byte is
    reserved: any name or value fits). ASCII text goes in as it is (msgspec, in C; `isascii` is a flag
    lookup); bytes (a packed state) and other text (UTF-8, and bytes carried with `surrogateescape`: a KPI
    marker) with a header made here."""
    return _encode(
        [part if isinstance(part, str) and part.isascii() else _raw(encoded(part)) for part in parts]
    )


def unpack(block: bytes) -> list[bytes]:
    """The parts of a `pack`ed argument, as the script sees them (bytes): for benchmarks and tests."""
    count, at = _length(block, 0, _ARRAY)
    parts = []
    for _ in range(count):
        n, at = _length(block, at, _STR)
        parts.append(block[at : at + n])
        at += n
    if at != len(block):
        raise ValueError(f"{len(block) - at} bytes after the packed parts")
    return parts


# msgpack lengths: (the fix form's first byte, how many lengths it holds, {long form's byte: length width})
_ARRAY: Final = (0x90, 0x10, {0xDC: 2, 0xDD: 4})
_STR: Final = (0xA0, 0x20, {0xD9: 1, 0xDA: 2, 0xDB: 4})


def _length(block: bytes, at: int, form: tuple[int, int, dict[int, int]]) -> tuple[int, int]:
    """The array or str length whose header is at `at`, and where its content starts."""
    head, (fix, span, widths) = block[at], form
    if fix <= head < fix + span:
        return head - fix, at + 1
    width = widths.get(head)
    if width is None:
        raise ValueError(f"not a packed {'array' if fix == 0x90 else 'str'} at byte {at}: {head:#x}")
    return int.from_bytes(block[at + 1 : at + 1 + width], "big"), at + 1 + width
