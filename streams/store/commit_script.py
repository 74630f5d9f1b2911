"""How the Redis store speaks to commit.lua: the customer writes and membership entries packed into its
arguments, and its refusals mapped to the port's exceptions."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from redis.exceptions import ResponseError

from streams.store.indexes import IndexDelta
from streams.store.keys import KeySpace
from streams.store.port import CommitRefused, CustomerWrite, Fenced, Rewound, StaleOffset

SEP = "\x00"  # joins the batch's customer writes, or an op's args, into one script argument
BSEP = SEP.encode()
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
    Joined by SEP into one script argument when no part contains SEP (`block`): redis-py encodes each
    argument in Python (~1 µs each), and a batch has hundreds of customers with dozens of changed fields."""
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


def block(parts: Sequence[str | bytes]) -> bytes | None:
    """The parts joined by SEP into one argument, or None when some part contains SEP (then each part is an
    argument of its own). Runs of text are encoded in one call each; a binary field (bytes, never holding
    NUL: `state_codec.nul_free`) goes in as it is, never turned into text and back."""
    out: list[bytes] = []
    run: list[str] = []
    for part in [*parts, b""]:  # the sentinel closes the last run of text
        if isinstance(part, str):
            run.append(part)
            continue
        if run:
            text = SEP.join(run)
            if text.count(SEP) != len(run) - 1:
                return None
            out.append(text.encode("utf-8", "surrogateescape"))
            run = []
        if BSEP in part:
            return None
        out.append(part)
    return BSEP.join(out[:-1])  # without the sentinel
