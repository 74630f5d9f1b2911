"""The read client: one customer, its history and "as of" answers, segment counts, KPIs, flows and members.

    reader = await SegmentReader.connect(Settings())
    profile = await reader.get_customer("42")                 # None when unknown
    at = await reader.segment_of("42", "lifecycle", as_of=datetime(2026, 3, 1, tzinfo=UTC))
    counts = await reader.segment_kpis("rfm")                  # summed over partitions, one round trip
    async for cid in reader.iter_members("lifecycle", "at_risk"): ...

Keys and fields: docs/read_side.md. A customer lives in partition `partition_for(id, topic_partitions)`;
per-segment figures are the sums of the per-partition hashes. The namespace: `settings.namespace`, else the
active one (`streams.store.namespaces`), re-read every `namespace_ttl_s` at most: readers follow a switch.
Never KEYS: members are paged partition by partition, walking each segment's bitmap in byte windows and
mapping ordinals to ids (streams/store/membership.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

import redis.asyncio as aioredis

from segmentation import Definitions
from segmentation.state_mapping import AUDIENCE_FIELD, STATE
from streams.read import kpis as _kpis
from streams.read import members_walk
from streams.read.history import History, HistoryEntry, SegmentAt, history_of, projected_at, segment_at
from streams.read.kpis import Crosstab, GridKpis
from streams.read.members_cursor import cursor_pattern, parse_cursor
from streams.read.members_walk import WalkMoved
from streams.read.profile import CustomerProfile, Kpis, MembersPage, kpis_of, profile_of
from streams.read.snapshot import grid_flows
from streams.settings import Settings
from streams.store.connection import async_pooled_client
from streams.store.history_format import FIELD as HISTORY
from streams.store.keys import KeySpace
from streams.store.namespaces import active_namespace
from streams.store.partitioning import partition_for
from streams.store.readable import check_readable, current_standing
from streams.store.replies import text
from streams.store.replies import texts as _texts
from streams.store.stored_state import history_refused, readers_view, stored_state
from streams.store.weeks import FORMAT_FIELD, check_format

T = TypeVar("T")
MAX_ID_LENGTH = 256


class BadRequest(ValueError):
    """A parameter the read side refuses (the HTTP API answers 400)."""


class NotFound(LookupError):
    """An unknown grid, segment or customer (the HTTP API answers 404)."""


class SegmentReader:
    def __init__(
        self,
        client: aioredis.Redis,
        settings: Settings,
        definitions: Definitions | None = None,
        namespace_ttl_s: float = 1.0,
    ) -> None:
        self._r, self.settings = client, settings
        defs = definitions or (
            Definitions.from_yaml(settings.definitions_file)
            if settings.definitions_file
            else Definitions.default()
        )
        self.definitions = defs  # to answer `as_of` beyond a customer's clock (see segment_of)
        self.grids: dict[str, tuple[str, ...]] = defs.grid_segments
        self._ttl, self._keys_at = namespace_ttl_s, 0.0
        self._checked: tuple[KeySpace, str, str] | None = None  # keys, build, standing of the last check
        self._fresh: asyncio.Future[tuple[KeySpace, str, str]] | None = None  # the check under way
        self._partitions = range(settings.topic_partitions)
        self._cursor = re.compile(cursor_pattern(settings.topic_partitions))

    @classmethod
    async def connect(cls, settings: Settings, **kwargs: Any) -> SegmentReader:
        # bounded: a burst waits for a free connection, only overload answers 503 (connection.py, cluster too)
        client = async_pooled_client(
            settings.redis_url,
            settings.api_redis_max_connections,
            settings.api_redis_pool_timeout_s,
            settings.redis_cluster,
            decode_responses=True,
            encoding_errors="surrogateescape",  # the packed `state` field (streams/store/replies.py)
            socket_timeout=settings.redis_timeout_s,
            **settings.redis_tls(),
        )
        return cls(client, settings, **kwargs)

    @property
    def client(self) -> aioredis.Redis:
        return self._r

    async def aclose(self) -> None:
        await self._r.aclose()

    async def keyspace(self) -> KeySpace:
        return (await self.checked())[0]

    async def checked(self) -> tuple[KeySpace, str, str]:
        """Keys, build, standing of one check (`check_readable`) per ttl, shared: its failure is theirs."""
        if self._checked is not None and time.monotonic() - self._keys_at <= self._ttl:
            return self._checked
        if self._fresh is None or self._fresh.done():
            self._fresh = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._fresh)  # a caller cancelled (its deadline) leaves it to the others

    async def _refresh(self) -> tuple[KeySpace, str, str]:
        keys = await self.namespace_keys()
        self._checked = (keys, *await check_readable(self._r, keys, self.settings.topic_partitions))
        self._keys_at = time.monotonic()
        return self._checked

    async def namespace_keys(self) -> KeySpace:
        """The namespace read, unchecked: for what any segstream writes alike (its workers' metrics)."""
        namespace = self.settings.namespace or await active_namespace(self._r, self.settings.key_prefix)
        return KeySpace(self.settings.key_prefix, namespace, self.settings.events_topic)

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
    async def get_customer(self, customer_id: str, declared: bool = False) -> CustomerProfile | None:
        """The profile, None when unknown; declared personal data only with `declared=True`."""
        keys, row = await self._row(customer_id)
        p = self.partition(customer_id)
        view = readers_view(row, keys.namespace) if row else None  # no history field: passed apart
        with history_refused(keys.namespace, customer_id):
            return None if view is None else profile_of(customer_id, p, view, declared, row.get(HISTORY))

    async def history(self, customer_id: str) -> History | None:
        """Transitions kept for the customer, oldest first (the `history` field of its hash), with the why of
        each current segment as of its clock; None for an unknown customer."""
        keys, row = await self._row(customer_id)
        if not row:
            return None
        with history_refused(keys.namespace, customer_id):
            return history_of(customer_id, row, self.definitions)

    async def _row(self, customer_id: str) -> tuple[KeySpace, dict[str, str]]:
        """The customer's hash, read once (one HGETALL: its history and state are of one commit)."""
        _check_id(customer_id)
        keys = await self.keyspace()
        return keys, _texts(await self._r.hgetall(keys.customer(self.partition(customer_id), customer_id)))

    async def segment_of(self, customer_id: str, grid: str, as_of: datetime | None = None) -> SegmentAt:
        """The segment now (from the hash; an absent audience answer from `state`) or at `as_of`: from the
        history up to the customer's clock (says so when too short), beyond it projected (`projected_at`)."""
        self._grid(grid)
        if as_of is None:
            _check_id(customer_id)
            keys = await self.keyspace()
            p = self.partition(customer_id)
            async with self._r.pipeline(transaction=False) as pipe:
                pipe.hlen(keys.customer(p, customer_id))  # not EXISTS: multi-key in a cluster pipeline
                audience = grid.startswith(AUDIENCE_FIELD)  # its `not_member` is in `state`, not stored
                pipe.hmget(keys.customer(p, customer_id), [grid, STATE] if audience else [grid, grid])
                pipe.hmget(keys.partition_meta(p), ["offset", FORMAT_FIELD])  # an earlier layout: no `<grid>`
                exists, (segment, packed), (offset, kept) = await pipe.execute()
            check_format(keys.namespace, offset, kept)
            if not exists:
                return SegmentAt(
                    customer_id=customer_id, grid=grid, as_of=None, segment=None, status="unknown_customer"
                )
            if segment is None and packed is not None and audience:
                answers = stored_state({STATE: text(packed)}, keys.namespace).audiences
                segment = dict(answers).get(grid[len(AUDIENCE_FIELD) :])
            segment = text(segment) if segment else None
            return SegmentAt(
                customer_id=customer_id, grid=grid, as_of=None, segment=segment, status="current"
            )
        if as_of.tzinfo is None:
            raise BadRequest("as_of must carry a time zone")
        keys, row = await self._row(customer_id)  # history and state of one read: of one commit
        if not row:
            return SegmentAt(
                customer_id=customer_id, grid=grid, as_of=as_of, segment=None, status="unknown_customer"
            )
        with history_refused(keys.namespace, customer_id):
            recorded = segment_at(history_of(customer_id, row, self.definitions), grid, as_of)
        return projected_at(recorded, stored_state(row, keys.namespace), self.definitions, as_of)

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
        currency = self.definitions.currency
        return {segment: kpis_of(values, currency) for segment, values in sums.items()}

    async def segment_flows(self, grid: str) -> dict[str, dict[str, dict[str, int]]]:
        """day (UTC) -> segment -> {"in": entries, "out": exits}, summed over partitions."""
        self._grid(grid)
        keys = await self.keyspace()  # an older namespace is refused (`snapshot.week_snapshot`)
        return (await grid_flows(self._r, keys, self._partitions, grid))[0]

    async def grid_kpis(self, grid: str, first: date | None = None, last: date | None = None) -> GridKpis:
        """Every segment's KPIs over the UTC days first..last (inclusive; None: unbounded) and the retention
        periods inside them, from aggregate counters only (streams/read/kpis.py)."""
        self._grid(grid)
        keys = await self.keyspace()
        return await _kpis.grid_kpis(self._r, keys, self._partitions, self.definitions, grid, first, last)

    async def crosstab(self, rows: str, columns: str) -> Crosstab:
        """Customers, orders and revenue per (segment of `rows`, segment of `columns`), for a kept pair."""
        self._grid(rows), self._grid(columns)
        keys = await self.keyspace()
        answer = await _kpis.crosstab(self._r, keys, self._partitions, self.definitions, rows, columns)
        if answer is None:
            raise NotFound(_kpis.not_kept(self.definitions, rows, columns))
        return answer

    async def members_page(
        self,
        grid: str,
        segment: str,
        cursor: str | None = None,
        count: int = 100,
        walk: tuple[KeySpace, str, str] | None = None,
    ) -> MembersPage:
        """Up to `count` members; the cursor is `<partition>:<ordinal>...` (opaque to callers): where the walk
        goes on, so a page never repeats a member of an earlier page of the same walk. A cursor of a walk
        begun in another namespace, or another build of it, is refused (`WalkMoved`), as is a page read while
        the namespace's standing moved from its check's (a drop, a rebuild). `walk`: the keys, build and
        standing the walk began with, kept (`iter_members`)."""
        if segment not in self._grid(grid):
            raise NotFound(f"unknown segment {segment!r} of grid {grid!r}")
        if not 1 <= count <= 10_000:
            raise BadRequest("count must be within 1..10000")
        parsed = parse_cursor(cursor, self._cursor)
        if parsed is None:
            raise BadRequest("malformed cursor: pass back the next_cursor of the previous page")
        (keys, build, standing), parts = walk or await self.checked(), self.settings.topic_partitions
        page = await members_walk.page(self._r, keys, build, parts, grid, segment, parsed, count)
        now = await current_standing(self._r, keys)  # after: a page of a dropped namespace is empty
        if now != standing:
            self._checked = None  # a check up to `namespace_ttl_s` old: the next one is taken afresh
            if walk is None and cursor is None:  # a new walk: read again in the namespace as it is now
                return await self.members_page(grid, segment, None, count, await self.checked())
            raise WalkMoved(members_walk.gone(keys.namespace, standing, now))
        return page

    async def iter_members(self, grid: str, segment: str, count: int = 500) -> AsyncIterator[str]:
        """Every member, partition by partition (one entering or leaving meanwhile may be listed or not), of
        the namespace read at the walk's start; its drop or rebuild meanwhile stops the walk (`WalkMoved`)."""
        cursor: str | None = None
        walk = await self.checked()
        while True:
            page = await self.members_page(grid, segment, cursor, count, walk)
            for member in page.members:
                yield member
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def ping(self) -> bool:
        return bool(await self._r.ping())


ID_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f]{1,256}$"  # declared as is in the OpenAPI document
_ID = re.compile(ID_PATTERN)


def _check_id(customer_id: str) -> None:
    """1..256 characters, no control character: a rule the OpenAPI document can state exactly (a regular
    expression), unlike str.isprintable()."""
    if len(customer_id) > MAX_ID_LENGTH or not _ID.fullmatch(customer_id):
        raise BadRequest("customer id must be 1..256 characters, none of them a control character")


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
    "WalkMoved",
    "segment_at",
)
