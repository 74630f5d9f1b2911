"""The in-memory store's membership: ordinals and bits with exactly the commit script's rules (BITS op in
streams/store/commit.lua, layout in streams/store/membership.py), so both stores pass the same contract."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import cast

from streams.store.indexes import ORDINAL, IndexDelta

Customers = dict[str, dict[str, str]]


@dataclass
class Ordinals:
    """One partition's next ordinal, ordinal -> id map and (grid, segment) -> ordinals whose bit is set."""

    next: int = 0
    ids: dict[int, str] = field(default_factory=dict)
    bits: dict[tuple[str, str], set[int]] = field(default_factory=dict)

    def members(self) -> dict[tuple[str, str], set[str]]:
        ids = self.ids
        found = {key: {ids[o] for o in bits if o in ids} for key, bits in self.bits.items()}
        return {key: members for key, members in found.items() if members}

    def stored(self, customers: Customers, index: IndexDelta) -> dict[str, int | None]:
        """The ordinal (`_o`) of every customer the delta names, read before the batch's writes."""
        out: dict[str, int | None] = {}
        for cid in script_order(index):
            text = customers.get(cid, {}).get(ORDINAL)
            out[cid] = None if text is None else int(text)
        return out

    def apply(self, customers: Customers, index: IndexDelta, old: Mapping[str, int | None]) -> None:
        """After the batch's writes: ordinals for the lifetimes begun (log order), then bits cleared at the
        stored ordinal and set at the new one, and the map; `customers` gets `_o` like the hash."""
        new: dict[str, int] = {}
        for cid in index.created:
            new[cid] = self.next
            self.next += 1
        adds: dict[str, list[tuple[str, str]]] = {}
        for key, ids in index.members_add.items():
            for cid in ids:
                adds.setdefault(cid, []).append(key)
        for cid in script_order(index):  # entering a segment without a lifetime reported nor an ordinal
            if cid in customers and cid not in new and old[cid] is None and cid in adds:
                new[cid] = self.next
                self.next += 1
        for key, ids in index.members_remove.items():
            for cid in ids:
                at = old[cid]
                if at is not None:
                    self.bits.setdefault(key, set()).discard(at)
        for cid, keys in adds.items():
            at = new.get(cid, old[cid])
            if cid in customers and at is not None:
                for key in keys:
                    self.bits.setdefault(key, set()).add(at)
        for cid, was in old.items():
            now, gone = new.get(cid), cid not in customers
            if was is not None and (gone or now is not None):
                self.ids.pop(was, None)
            if now is not None and not gone:
                self.ids[now] = cid
                customers[cid][ORDINAL] = str(now)
                mapping = index.mappings.get(cid)  # the caller's cache learns it, as from the Redis store
                if mapping is not None:
                    cast(MutableMapping[str, str], mapping)[ORDINAL] = str(now)


def script_order(index: IndexDelta) -> list[str]:
    """Customers in the order the Redis store names them in its BITS op: lifetimes, removals, additions."""
    names = dict.fromkeys(index.created)
    for members in (index.members_remove, index.members_add):
        for ids in members.values():
            names.update(dict.fromkeys(ids))
    return list(names)
