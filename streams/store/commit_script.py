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


def write_parts(writes: Sequence[CustomerWrite]) -> list[str]:
    """Every customer write as the script's parts: id, kind, due, n_set, n_removed, pairs, removed names.
    Joined by SEP into one script argument when no part contains SEP: redis-py encodes each argument in
    Python (~1 µs each), and a batch has hundreds of customers with dozens of changed fields each."""
    parts: list[str] = []
    add = parts.extend
    for w in writes:
        due = "" if w.due_us is None else str(w.due_us)
        if w.delete:
            add((w.customer_id, "D", due, "0", "0"))
            continue
        fields = w.set_fields
        add((w.customer_id, "S", due, str(len(fields)), str(len(w.removed_fields))))
        for item in fields.items():
            add(item)
        add(w.removed_fields)
    return parts
