"""The state store port: what the worker needs from storage, and an in-memory implementation of it.

The Redis adapter (`streams.store.redis_store`) and this in-memory one pass the same contract tests
(`tests/contract/`), so the worker's logic can be unit tested without a server and trusted with one.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from streams.store.erasures import digest, tombstone_row
from streams.store.indexes import CLEARED, IndexDelta
from streams.store.ordinals import Ordinals
from streams.store.weeks import by_grid, flows_of_moves

DEFAULT_HISTORY_SIZE = 64  # transitions kept per customer in its `history` (streams/store/history_format.py)


class Fenced(Exception):
    """This worker no longer owns the partition: another claimed it after us. Stop writing to it."""


class Rewound(Exception):
    """The store is behind our own claim (a restore, a failover to a lagging replica lost writes): nobody
    else owns the partition, our view of it is just newer than the store's. Claim it again and resume from
    what the store holds; nothing was written."""


class StaleOffset(Exception):
    """The commit would not move the partition's offset forward: its events are applied already."""


class CommitRefused(Exception):
    """The store refused the batch before writing any of it: a key holds another type than the commit writes,
    a counter is not an integer or would leave the 64-bit range. Retrying cannot help (the same batch comes
    back after a restart): the worker stops, and Redis still holds the state before the batch."""


@dataclass(frozen=True)
class Claim:
    """Ownership of one partition: the fence token every commit must present, and where to resume."""

    partition: int
    fence: int
    offset: int | None  # last applied offset, None when nothing was ever applied
    watermark_us: int | None  # max event time applied (epoch µs), drives replay-mode time
    owner: str = ""  # random id of this claim: tells it from a later claim that got the same fence number
    swept_us: int | None = None  # the clock of the last sweep marked before its publication (`sweep_mark`)


@dataclass(frozen=True)
class CustomerWrite:
    """One customer's change: fields to set, fields to remove, or deletion; plus its next due time."""

    customer_id: str
    set_fields: Mapping[str, str] = field(default_factory=dict)
    removed_fields: Sequence[str] = ()
    delete: bool = False
    due_us: int | None = None  # None: no time-driven change pending
    # due_us is the stored one already (the state this change starts from had it): a store may skip moving
    # the customer's due entry (commit.lua checks it is written once and keeps its ordinal)
    due_kept: bool = field(default=False, compare=False)
    erased_us: int | None = None  # erased_at where it changed: the tombstone to keep (store/erasures.py)
    # fields set after `set_fields` whose new values are bytes: the packed `state` and the coded `history`,
    # which the write path never turns into text (`set_fields` may hold them as text, as tools and tests do)
    binary: Mapping[str, bytes] = field(default_factory=dict)
    # the readable fields whose value changed, stored or not (an audience's `not_member` is absent from the
    # hash, `state_mapping.stored_changes`): what membership and KPIs follow; None: the set and removed ones
    readable_changes: Sequence[str] | None = field(default=None, compare=False)


class WriteBatch(list[CustomerWrite]):
    """The writes of one batch plus its read-side index delta.

    A list, so the port's `commit(claim, offset, watermark_us, writes)` keeps its signature: a plain list of
    writes commits state only, a WriteBatch also the indexes, in the same atomic step (the history is a field
    of each customer's write: `streams.store.writes.index_write`).
    """

    def __init__(self, writes: Iterable[CustomerWrite] = (), index: IndexDelta | None = None) -> None:
        super().__init__(writes)
        self.delta = index


@dataclass
class IndexSnapshot:
    """Every read-side structure of one partition (tests and diagnostics; readers use streams.read.reader)."""

    members: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    kpis: dict[str, dict[str, int]] = field(default_factory=dict)
    moves: dict[str, dict[str, int]] = field(default_factory=dict)  # grid -> its weeks' `t:`, days named
    # grid -> KPI counters, the weeks' `d:<grid>:<week>` and the periods' `r:<grid>` as one hash (days named)
    daily: dict[str, dict[str, int]] = field(default_factory=dict)
    cross: dict[str, dict[str, int]] = field(default_factory=dict)  # `<a>|<b>` -> crossing (`x:<a>|<b>`)

    @property
    def flows(self) -> dict[str, dict[str, int]]:
        """grid -> its day flows, days named: derived from `moves` (`weeks.flows_of_moves`), kept nowhere."""
        return {grid: flows_of_moves(moves) for grid, moves in self.moves.items()}


def new_owner() -> str:
    """A claim's random id (hex: the commit script's token pattern)."""
    return secrets.token_hex(8)


def check_standing(
    claim: Claim, fence: int | None, seq: int, next_seq: int, owner: str | None = None
) -> None:
    """Raise unless the partition is still exactly as our last commit left it: our fence, and our last commit
    the last one stored (`next_seq` - 1, or `next_seq` when a commit of ours is in flight and just landed)."""
    p = claim.partition
    if fence is None or fence < claim.fence:
        raise Rewound(f"partition {p}: fence {fence} is below our claim {claim.fence}")
    if fence != claim.fence:
        raise Fenced(f"partition {p} is owned by fence {fence}, not {claim.fence}")
    if claim.owner and owner is not None and owner != claim.owner:  # Redis lost our claim, another took it
        raise Fenced(f"partition {p}: fence {fence} was claimed again by another owner")
    if seq < next_seq - 1:
        raise Rewound(f"partition {p}: stored commit {seq} is before our last one ({next_seq - 1})")
    if seq > next_seq:  # only our claim commits under our fence: someone reused the number after a rewind
        raise Fenced(f"partition {p}: commit {seq} under our fence {fence} is not ours ({next_seq - 1})")


class StateStore(Protocol):
    async def claim(self, partition: int) -> Claim: ...

    async def load(
        self, partition: int, customer_ids: Sequence[str], claim: Claim | None = None
    ) -> dict[str, dict[str, str]]:
        """The stored customer hashes; with `claim`, in the same round trip, `check_standing` of it."""
        ...

    async def commit(
        self, claim: Claim, offset: int | None, watermark_us: int | None, writes: Sequence[CustomerWrite]
    ) -> None:
        """Apply writes and move the offset atomically; on Fenced or StaleOffset nothing is written."""
        ...

    async def due(self, partition: int, until_us: int, limit: int) -> list[str]: ...

    def customer_ids(self, partition: int) -> AsyncIterator[str]:
        """Every customer with a stored state in the partition, in no order; one written meanwhile may be
        listed or not, one may be listed twice (SCAN): for walks whose steps are idempotent."""
        ...

    async def read_meta(self, partition: int) -> tuple[int | None, int | None]: ...

    async def release(self, claim: Claim) -> None:
        """Drop the claim's owner id when done (after a replay: the namespace is a function of the log)."""
        ...

    async def publish_metrics(self, fields: Mapping[str, str | int | float]) -> None:
        """Outside the commit: the worker's counters for a read side in another process (one HSET)."""
        ...

    async def retire_metrics(self, summed: list[tuple[str, str]], others: list[str]) -> None:
        """Fold each (field, into) of the metrics hash into `into` and delete it and `others`, at once
        (`metrics_hash.FOLD`)."""
        ...


@dataclass
class _Partition:
    fence: int = 0
    owner: str = ""  # the id of the claim that holds `fence`
    seq: int = 0  # commits applied (the Redis script's `seq`): one behind ours means Redis lost some
    offset: int | None = None
    watermark_us: int | None = None
    swept_us: int | None = None  # the meta hash's `sweeping` (streams/worker/sweep_mark.py)
    customers: dict[str, dict[str, str]] = field(default_factory=dict)
    erased: dict[str, int] = field(default_factory=dict)  # the `erased` hash: id digest -> erasure µs
    due: dict[str, int] = field(default_factory=dict)
    indexes: IndexSnapshot = field(default_factory=IndexSnapshot)
    membership: Ordinals = field(default_factory=Ordinals)  # as the commit script keeps it


class InMemoryStateStore:
    """Same semantics as the Redis store, for tests of the worker's logic."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}
        self._next_seq: dict[int, int] = {}
        self.metrics: dict[str, str] = {}

    def _p(self, partition: int) -> _Partition:
        return self._partitions.setdefault(partition, _Partition())

    async def claim(self, partition: int) -> Claim:
        p = self._p(partition)
        p.fence += 1
        p.owner = new_owner()
        self._next_seq[partition] = p.seq + 1
        return Claim(partition, p.fence, p.offset, p.watermark_us, p.owner, p.swept_us)

    async def load(
        self, partition: int, customer_ids: Sequence[str], claim: Claim | None = None
    ) -> dict[str, dict[str, str]]:
        p = self._p(partition)
        if claim is not None:
            fence = p.fence or None  # 0: never claimed (or Redis lost the claim)
            check_standing(claim, fence, p.seq, self._next_seq.get(partition, 1), p.owner)
        customers, erased = p.customers, p.erased
        found = {cid: dict(customers[cid]) for cid in customer_ids if cid in customers}
        for cid in customer_ids:
            if cid not in found and digest(cid) in erased:  # as the Redis store: the tombstone, read back
                found[cid] = tombstone_row(cid, erased[digest(cid)])
        return found

    async def commit(
        self, claim: Claim, offset: int | None, watermark_us: int | None, writes: Sequence[CustomerWrite]
    ) -> None:
        p = self._p(claim.partition)
        if p.fence < claim.fence:
            raise Rewound(f"partition {claim.partition}: fence {p.fence} is below our claim {claim.fence}")
        if p.fence != claim.fence or (claim.owner and p.owner != claim.owner):
            raise Fenced(f"partition {claim.partition} is owned by fence {p.fence}, not {claim.fence}")
        seq = self._next_seq.get(claim.partition, 1)
        if seq > p.seq + 1:
            raise Rewound(f"partition {claim.partition}: commit {seq} after {p.seq} under our own fence")
        if offset is not None and p.offset is not None and offset <= p.offset:
            raise StaleOffset(f"partition {claim.partition}: offset {offset} <= applied {p.offset}")
        delta = writes.delta if isinstance(writes, WriteBatch) else None
        stored = p.membership.stored(p.customers, delta) if delta is not None else {}
        # as commit.lua: a due time marked unchanged is left as stored, unless the customer is written twice
        # in the commit or begins a lifetime in it (so unit tests over this store catch a wrong mark too)
        times = Counter(w.customer_id for w in writes)
        began = set(delta.created) if delta is not None else set()
        for w in writes:
            if w.delete:
                p.customers.pop(w.customer_id, None)
            else:
                fields = p.customers.setdefault(w.customer_id, {})
                fields.update(w.set_fields)  # then the binary fields and the removals, as commit.lua does
                for name, value in w.binary.items():
                    fields[name] = value.decode("utf-8", "surrogateescape")
                for name in w.removed_fields:
                    fields.pop(name, None)
            if w.due_kept and not w.delete and times[w.customer_id] == 1 and w.customer_id not in began:
                pass
            elif w.due_us is None or w.delete:
                p.due.pop(w.customer_id, None)
            else:
                p.due[w.customer_id] = w.due_us
        if isinstance(writes, WriteBatch) and delta is not None:
            p.membership.apply(p.customers, delta, stored)
            _apply_index(p, delta)
        if offset is not None:
            p.offset = offset
        if watermark_us is not None:
            p.watermark_us = max(watermark_us, p.watermark_us or watermark_us)
        p.seq = seq
        self._next_seq[claim.partition] = seq + 1

    async def due(self, partition: int, until_us: int, limit: int) -> list[str]:
        due = self._p(partition).due
        ready = sorted((us, cid) for cid, us in due.items() if us <= until_us)
        return [cid for _, cid in ready[:limit]]

    async def customer_ids(self, partition: int) -> AsyncIterator[str]:
        for customer_id in list(self._p(partition).customers):
            yield customer_id

    async def release(self, claim: Claim) -> None:
        p = self._p(claim.partition)
        if p.owner == claim.owner:
            p.owner = ""

    async def read_meta(self, partition: int) -> tuple[int | None, int | None]:
        p = self._p(partition)
        return p.offset, p.watermark_us

    async def publish_metrics(self, fields: Mapping[str, str | int | float]) -> None:
        self.metrics.update({k: str(v) for k, v in fields.items()})

    async def retire_metrics(self, summed: list[tuple[str, str]], others: list[str]) -> None:
        for name, into in summed:
            value = self.metrics.pop(name, None)
            if value is not None:  # as `metrics_hash.FOLD` writes it
                was, sec = self.metrics.get(into, "0"), into.endswith(":batch_seconds_sum")
                self.metrics[into] = f"{float(was) + float(value):.6f}" if sec else str(int(was) + int(value))
        for other in others:
            self.metrics.pop(other, None)

    async def read_indexes(self, partition: int) -> IndexSnapshot:
        p = self._p(partition)
        ix = p.indexes
        return IndexSnapshot(
            p.membership.members(),
            {g: dict(f) for g, f in ix.kpis.items()},
            {g: dict(f) for g, f in ix.moves.items()},
            {g: dict(f) for g, f in ix.daily.items()},
            {g: dict(f) for g, f in ix.cross.items()},
        )


def _apply_index(p: _Partition, index: IndexDelta) -> None:
    """The same semantics as the commit script's op list (streams/store/commit.lua)."""
    ix = p.indexes
    p.erased.update((digest(cid), us) for cid, us in index.erasures.items())
    if index.swept_us is not None:
        p.swept_us = None if index.swept_us == CLEARED else index.swept_us
    for counters, fields in (
        (ix.kpis, index.kpi_fields()),
        (ix.moves, by_grid(index.move_fields())),
        (ix.daily, by_grid(*index.daily_fields())),
        (ix.cross, index.cross_fields()),
    ):
        for grid, pairs in fields.items():
            target = counters.setdefault(grid, {})
            for name, delta in pairs:
                total = target.get(name, 0) + delta
                if total:
                    target[name] = total
                else:  # like HINCRBY then HDEL at 0 in the commit script
                    target.pop(name, None)
