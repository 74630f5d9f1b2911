"""The read client: one customer, its history and "as of" answers, segment counts, KPIs, flows and members.

    reader = await SegmentReader.connect(Settings())
    profile = await reader.get_customer("42")                 # None when unknown
    at = await reader.segment_of("42", "lifecycle", as_of=datetime(2026, 3, 1, tzinfo=UTC))
    counts = await reader.segment_kpis("rfm")                  # summed over partitions, one round trip
    async for cid in reader.iter_members("lifecycle", "at_risk"): ...

Keys and fields: docs/read_side.md. A customer lives in partition `partition_for(id, topic_partitions)`;
per-segment figures are the sums of the per-partition hashes. The namespace is `settings.namespace` when set,
else the active one (`streams.namespaces`), re-read at most every `namespace_ttl_s`: readers follow a switch.
Never KEYS or SMEMBERS: members are paged with SSCAN, partition by partition.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field

from segmentation import Definitions
from segmentation.instants import parse_iso
from segmentation.transition import transition_id
from streams.keys import KeySpace
from streams.namespaces import active_namespace
from streams.partitioning import partition_for
from streams.settings import Settings
from streams.store import HISTORY_TRIMMED

T = TypeVar("T")
MAX_ID_LENGTH = 256


class BadRequest(ValueError):
    """A parameter the read side refuses (the HTTP API answers 400)."""


class NotFound(LookupError):
    """An unknown grid, segment or customer (the HTTP API answers 404)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Rfm(_Model):
    segment: str | None
    r: int | None = Field(description="recency score 1-5")
    f: int | None = Field(description="frequency score 1-5")
    m: int | None = Field(description="monetary score 1-5")
    last_purchase_at: datetime | None = Field(description="raw recency")
    orders: int = Field(description="raw frequency")
    monetary_minor: int = Field(description="raw monetary: net, base-currency minor units")


class Lifecycle(_Model):
    stage: str | None
    since: datetime | None
    reactivated_at: datetime | None


class Freshness(_Model):
    last_event_at: datetime | None
    clock: datetime | None = Field(description="event time the segments are as of")
    offset: str | None = Field(description="`partition:offset` of the last event applied")
    definitions_version: str | None


class Metrics(_Model):
    currency: str | None
    orders: int
    refunds: int
    gross_minor: int
    refunded_minor: int
    monetary_minor: int
    monetary: str | None
    first_seen_at: datetime | None
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


class CustomerProfile(_Model):
    customer_id: str
    partition: int
    segments: dict[str, str | None]
    rfm: Rfm
    lifecycle: Lifecycle
    metrics: Metrics
    freshness: Freshness
    history_trimmed: bool


class HistoryEntry(_Model):
    grid: str
    from_segment: str | None
    to_segment: str | None
    effective_at: datetime
    cause: str
    id: str
    why: dict[str, str]


class History(_Model):
    customer_id: str
    entries: list[HistoryEntry] = Field(description="oldest first")
    trimmed: bool = Field(description="older transitions were dropped (capacity: history_size)")


class SegmentAt(_Model):
    customer_id: str
    grid: str
    as_of: datetime | None
    segment: str | None
    status: Literal["current", "known", "not_yet", "beyond_history", "unknown_customer"]
    since: datetime | None = None
    transition_id: str | None = None
    why: dict[str, str] | None = None


class Kpis(_Model):
    customers: int
    revenue_minor: int
    orders: int
    average_basket_minor: float | None = Field(description="revenue_minor / orders; None without orders")


class MembersPage(_Model):
    members: list[str]
    next_cursor: str | None = Field(description="pass back as `cursor`; None when done")


class SegmentReader:
    def __init__(
        self,
        client: aioredis.Redis,
        settings: Settings,
        definitions: Definitions | None = None,
        namespace_ttl_s: float = 1.0,
    ) -> None:
        self._r = client
        self.settings = settings
        defs = definitions or (
            Definitions.from_yaml(settings.definitions_file)
            if settings.definitions_file
            else Definitions.default()
        )
        self.grids: dict[str, tuple[str, ...]] = defs.grid_segments
        self._ttl = namespace_ttl_s
        self._keys: KeySpace | None = None
        self._keys_at = 0.0
        self._partitions = range(settings.topic_partitions)

    @classmethod
    async def connect(cls, settings: Settings, **kwargs: Any) -> SegmentReader:
        client = aioredis.Redis.from_url(
            settings.redis_url, decode_responses=True, socket_timeout=settings_timeout(settings)
        )
        return cls(client, settings, **kwargs)

    @property
    def client(self) -> aioredis.Redis:
        return self._r

    async def aclose(self) -> None:
        await self._r.aclose()

    # -- keys ---------------------------------------------------------------------------------------------
    async def keyspace(self) -> KeySpace:
        now = time.monotonic()
        if self._keys is None or (self.settings.namespace is None and now - self._keys_at > self._ttl):
            namespace = self.settings.namespace or await active_namespace(self._r, self.settings.key_prefix)
            self._keys = KeySpace(self.settings.key_prefix, namespace, self.settings.events_topic)
            self._keys_at = now
        return self._keys

    async def namespace(self) -> str:
        return (await self.keyspace()).namespace

    def partition(self, customer_id: str) -> int:
        return partition_for(customer_id, self.settings.topic_partitions)

    def _grid(self, grid: str) -> tuple[str, ...]:
        segments = self.grids.get(grid)
        if segments is None:
            raise NotFound(f"unknown grid {grid!r}")
        return segments

    # -- one customer -------------------------------------------------------------------------------------
    async def get_customer(self, customer_id: str) -> CustomerProfile | None:
        _check_id(customer_id)
        keys = await self.keyspace()
        p = self.partition(customer_id)
        row = _texts(await self._r.hgetall(keys.customer(p, customer_id)))
        return profile_of(customer_id, p, row) if row else None

    async def history(self, customer_id: str) -> History | None:
        """Transitions kept for the customer, oldest first; None when neither state nor history exists."""
        _check_id(customer_id)
        keys = await self.keyspace()
        p = self.partition(customer_id)
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.lrange(keys.history(p, customer_id), 0, -1)
            pipe.hget(keys.customer(p, customer_id), HISTORY_TRIMMED)
            pipe.exists(keys.customer(p, customer_id))
            raw, trimmed, exists = await pipe.execute()
        if not raw and not exists:
            return None
        entries = [entry_of(customer_id, orjson.loads(item)) for item in reversed(raw)]
        return History(customer_id=customer_id, entries=entries, trimmed=bool(trimmed))

    async def segment_of(self, customer_id: str, grid: str, as_of: datetime | None = None) -> SegmentAt:
        """The segment now (from the hash) or at `as_of` (from the history; says so when it is too short)."""
        self._grid(grid)
        if as_of is None:
            _check_id(customer_id)
            keys = await self.keyspace()
            p = self.partition(customer_id)
            async with self._r.pipeline(transaction=False) as pipe:
                pipe.exists(keys.customer(p, customer_id))
                pipe.hget(keys.customer(p, customer_id), f"segment:{grid}")
                exists, segment = await pipe.execute()
            if not exists:
                return SegmentAt(
                    customer_id=customer_id, grid=grid, as_of=None, segment=None, status="unknown_customer"
                )
            return SegmentAt(
                customer_id=customer_id, grid=grid, as_of=None, segment=segment or None, status="current"
            )
        if as_of.tzinfo is None:
            raise BadRequest("as_of must carry a time zone")
        history = await self.history(customer_id)
        if history is None:
            return SegmentAt(
                customer_id=customer_id, grid=grid, as_of=as_of, segment=None, status="unknown_customer"
            )
        return segment_at(history, grid, as_of)

    # -- per segment --------------------------------------------------------------------------------------
    async def segment_count(self, grid: str, segment: str) -> int:
        if segment not in self._grid(grid):
            raise NotFound(f"unknown segment {segment!r} of grid {grid!r}")
        keys = await self.keyspace()
        async with self._r.pipeline(transaction=False) as pipe:
            for p in self._partitions:
                pipe.hget(keys.kpis(p, grid), f"{segment}:customers")
            values = await pipe.execute()
        return sum(int(v) for v in values if v)

    async def segment_kpis(self, grid: str) -> dict[str, Kpis]:
        """Every segment of the grid (zeros included): customers, net revenue, orders, average basket."""
        segments = self._grid(grid)
        keys = await self.keyspace()
        async with self._r.pipeline(transaction=False) as pipe:
            for p in self._partitions:
                pipe.hgetall(keys.kpis(p, grid))
            rows = await pipe.execute()
        sums: dict[str, dict[str, int]] = {s: defaultdict(int) for s in segments}
        for row in rows:
            for name, value in _texts(row).items():
                segment, _, metric = name.rpartition(":")
                sums.setdefault(segment, defaultdict(int))[metric] += int(value)
        return {segment: kpis_of(values) for segment, values in sums.items()}

    async def segment_flows(self, grid: str) -> dict[str, dict[str, dict[str, int]]]:
        """day (UTC) -> segment -> {"in": entries, "out": exits}, summed over partitions."""
        self._grid(grid)
        keys = await self.keyspace()
        async with self._r.pipeline(transaction=False) as pipe:
            for p in self._partitions:
                pipe.hgetall(keys.flows(p, grid))
            rows = await pipe.execute()
        out: dict[str, dict[str, dict[str, int]]] = {}
        for row in rows:
            for name, value in _texts(row).items():
                rest, _, day = name.rpartition(":")
                segment, _, direction = rest.rpartition(":")
                cell = out.setdefault(day, {}).setdefault(segment, {"in": 0, "out": 0})
                cell[direction] = cell.get(direction, 0) + int(value)
        return dict(sorted(out.items()))

    async def members_page(
        self, grid: str, segment: str, cursor: str | None = None, count: int = 100
    ) -> MembersPage:
        """One SSCAN step; the cursor is `<partition>:<sscan cursor>` (opaque to callers)."""
        if segment not in self._grid(grid):
            raise NotFound(f"unknown segment {segment!r} of grid {grid!r}")
        if not 1 <= count <= 10_000:
            raise BadRequest("count must be within 1..10000")
        partition, position = _parse_cursor(cursor, self.settings.topic_partitions)
        keys = await self.keyspace()
        members: list[str] = []
        while partition < self.settings.topic_partitions:
            position, chunk = await self._r.sscan(
                keys.members(partition, grid, segment), cursor=position, count=count
            )
            members += [_text(m) for m in chunk]
            if position == 0:
                partition, position = partition + 1, 0
            if len(members) >= count:
                break
        done = partition >= self.settings.topic_partitions
        return MembersPage(members=members, next_cursor=None if done else f"{partition}:{position}")

    async def iter_members(self, grid: str, segment: str, count: int = 500) -> AsyncIterator[str]:
        """Every member, SSCAN cursor per partition (a member moving meanwhile may be seen twice or not)."""
        cursor: str | None = None
        while True:
            page = await self.members_page(grid, segment, cursor, count)
            for member in page.members:
                yield member
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def ping(self) -> bool:
        return bool(await self._r.ping())


class SyncReader:
    """The same reads for synchronous code (a private event loop; not for use inside a running loop)."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        self._runner = asyncio.Runner()
        self._reader = self._runner.run(SegmentReader.connect(settings, **kwargs))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def get_customer(self, customer_id: str) -> CustomerProfile | None:
        return self._run(self._reader.get_customer(customer_id))

    def history(self, customer_id: str) -> History | None:
        return self._run(self._reader.history(customer_id))

    def segment_of(self, customer_id: str, grid: str, as_of: datetime | None = None) -> SegmentAt:
        return self._run(self._reader.segment_of(customer_id, grid, as_of))

    def segment_count(self, grid: str, segment: str) -> int:
        return self._run(self._reader.segment_count(grid, segment))

    def segment_kpis(self, grid: str) -> dict[str, Kpis]:
        return self._run(self._reader.segment_kpis(grid))

    def members(self, grid: str, segment: str, count: int = 500) -> list[str]:
        async def collect() -> list[str]:
            return [m async for m in self._reader.iter_members(grid, segment, count)]

        return self._run(collect())

    def close(self) -> None:
        self._run(self._reader.aclose())
        self._runner.close()

    def __enter__(self) -> SyncReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- pure helpers (unit tested) ---------------------------------------------------------------------------
def segment_at(history: History, grid: str, as_of: datetime) -> SegmentAt:
    """The last transition of `grid` effective at or before `as_of` decides; without one, either the customer
    was not in the grid yet (its first transition, from none, is kept) or the history is too short to say."""
    entries = [e for e in history.entries if e.grid == grid]
    base = {"customer_id": history.customer_id, "grid": grid, "as_of": as_of}
    for entry in reversed(entries):
        if entry.effective_at <= as_of:
            return SegmentAt(
                **base,
                segment=entry.to_segment,
                status="known",
                since=entry.effective_at,
                transition_id=entry.id,
                why=entry.why,
            )
    first_kept = entries[0] if entries else None
    if not history.trimmed or (first_kept is not None and first_kept.from_segment is None):
        return SegmentAt(**base, segment=None, status="not_yet")
    return SegmentAt(**base, segment=None, status="beyond_history")


def profile_of(customer_id: str, partition: int, row: Mapping[str, str]) -> CustomerProfile:
    get = row.get
    segments = {k[8:]: (v or None) for k, v in row.items() if k.startswith("segment:")}
    return CustomerProfile(
        customer_id=customer_id,
        partition=partition,
        segments=segments,
        rfm=Rfm(
            segment=get("segment:rfm") or None,
            r=_opt_int(get("rfm:r")),
            f=_opt_int(get("rfm:f")),
            m=_opt_int(get("rfm:m")),
            last_purchase_at=_time(get("last_purchase_at")),
            orders=_opt_int(get("orders")) or 0,
            monetary_minor=_opt_int(get("monetary_minor")) or 0,
        ),
        lifecycle=Lifecycle(
            stage=get("segment:lifecycle") or None,
            since=_time(get("lifecycle_since")),
            reactivated_at=_time(get("reactivated_at")),
        ),
        metrics=Metrics(
            currency=get("currency") or None,
            orders=_opt_int(get("orders")) or 0,
            refunds=_opt_int(get("refunds")) or 0,
            gross_minor=_opt_int(get("gross_minor")) or 0,
            refunded_minor=_opt_int(get("refunded_minor")) or 0,
            monetary_minor=_opt_int(get("monetary_minor")) or 0,
            monetary=get("monetary") or None,
            first_seen_at=_time(get("first_seen_at")),
            first_purchase_at=_time(get("first_purchase_at")),
            last_purchase_at=_time(get("last_purchase_at")),
        ),
        freshness=Freshness(
            last_event_at=_time(get("last_seen_at")),
            clock=_time(get("clock")),
            offset=get("_offset") or None,
            definitions_version=get("definitions_version") or None,
        ),
        history_trimmed=get(HISTORY_TRIMMED) == "1",
    )


def entry_of(customer_id: str, raw: object) -> HistoryEntry:
    """A stored history entry: the positional array written today, or the keyed object of older versions."""
    if isinstance(raw, list):
        grid, from_segment, to_segment, at, cause, why = raw
        effective_at = parse_iso(at)
        return HistoryEntry(
            grid=grid,
            from_segment=from_segment,
            to_segment=to_segment,
            effective_at=effective_at,
            cause=cause,
            id=transition_id(customer_id, grid, from_segment, to_segment, effective_at, cause),
            why=why or {},
        )
    if not isinstance(raw, Mapping):
        raise ValueError(f"unreadable history entry for customer {customer_id!r}")
    return HistoryEntry(
        grid=raw["grid"],
        from_segment=raw.get("from"),
        to_segment=raw.get("to"),
        effective_at=raw["at"],
        cause=raw["cause"],
        id=raw["id"],
        why=raw.get("why") or {},
    )


def kpis_of(values: Mapping[str, int]) -> Kpis:
    orders, revenue = values.get("orders", 0), values.get("revenue_minor", 0)
    return Kpis(
        customers=values.get("customers", 0),
        revenue_minor=revenue,
        orders=orders,
        average_basket_minor=round(revenue / orders, 2) if orders else None,
    )


def settings_timeout(settings: Settings) -> float:
    return float(getattr(settings, "redis_timeout_s", 10.0))


def _check_id(customer_id: str) -> None:
    if not customer_id or len(customer_id) > MAX_ID_LENGTH or not customer_id.isprintable():
        raise BadRequest("customer id must be 1..256 printable characters")


def _parse_cursor(cursor: str | None, partitions: int) -> tuple[int, int]:
    if cursor is None or cursor == "":
        return 0, 0
    head, sep, tail = cursor.partition(":")
    if not sep or not head.isdigit() or not tail.isdigit():
        raise BadRequest("malformed cursor")
    partition, position = int(head), int(tail)
    if partition >= partitions:
        raise BadRequest("cursor out of range")
    return partition, position


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _opt_int(text: str | None) -> int | None:
    return int(text) if text else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _texts(row: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in row.items()}


__all__: Sequence[str] = (
    "BadRequest",
    "CustomerProfile",
    "History",
    "HistoryEntry",
    "Kpis",
    "MembersPage",
    "NotFound",
    "SegmentAt",
    "SegmentReader",
    "SyncReader",
    "segment_at",
)
