"""The state store on Redis: one pipelined read per batch, one fenced Lua commit per batch and partition."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, MutableMapping, Sequence
from functools import partial
from importlib import resources
from typing import cast

import redis.asyncio as aioredis
from redis import Redis as SyncRedis
from redis.exceptions import ResponseError

from streams.store.commit_script import CHUNKS, bits_entries, pack, refusal, write_parts
from streams.store.connection import scan_slot
from streams.store.day_names import period_named
from streams.store.due_index import UNORDERED, due_chunks, due_customers
from streams.store.erasures import digest, tombstones
from streams.store.fence import take
from streams.store.indexes import ORDINAL, IndexDelta
from streams.store.keys import KeySpace
from streams.store.membership import bitmap_ordinals, declared_chunks, ids_of, raw_reply
from streams.store.metrics_hash import FOLD, fold_args
from streams.store.port import Claim, CustomerWrite, IndexSnapshot, WriteBatch, check_standing, new_owner
from streams.store.replies import text as _text
from streams.store.round_trips import Command, RoundTrips, checked
from streams.store.weeks import FORMAT_FIELD, check_format, day_field

_RELEASE = """if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  return redis.call('HDEL', KEYS[1], 'owner')
end
return 0"""
_CHUNK = 1000  # entries per LPUSHCAP op: far below Lua's unpack limit


class RedisStateStore:
    def __init__(self, client: aioredis.Redis, keys: KeySpace) -> None:
        self._r = client
        self._keys = keys
        self._next_seq: dict[int, int] = {}  # partition -> sequence number of our next commit
        # partition -> (fence, owner) of our latest claim: only its commits' replies move the counters above
        self._claims: dict[int, tuple[int, str]] = {}
        # partition -> its ordinal counter after our last commit (None: unknown, e.g. after a 'DUP')
        self._next_ordinal: dict[int, int | None] = {}
        # partitions known to hold erasure tombstones: their loads ask for the digests in the same round trip
        self._tombstones: set[int] = set()
        self.chunk_refusals = 0  # commits sent again because an ordinal chunk was not declared (commit.lua)
        self.last_refused: tuple[int, ...] = ()  # the chunks the last refusal named
        self._trips = RoundTrips(client)  # a poll's partitions share their loads' and commits' round trips
        script = client.register_script(resources.files("streams.store").joinpath("commit.lua").read_text())
        self._commit = partial(self._trips.script, script)
        self._take = client.register_script(
            resources.files("streams.store").joinpath("claim.lua").read_text()
        )

    @property
    def keys(self) -> KeySpace:
        return self._keys

    async def claim(self, partition: int) -> Claim:
        """Take the partition: a new fence token makes every earlier owner's commits fail (`fence.take`)."""
        owner = new_owner()
        known = self._claims.get(partition)
        taken = await take(self._take, self._keys.partition_meta(partition), known and known[0], owner)
        self._next_seq[partition] = (taken.seq or 0) + 1
        self._next_ordinal[partition] = taken.ordinals or 0
        self._claims[partition] = (taken.fence, owner)
        return Claim(partition, taken.fence, taken.offset, taken.watermark_us, owner, taken.swept_us)

    async def load(
        self, partition: int, customer_ids: Sequence[str], claim: Claim | None = None
    ) -> dict[str, dict[str, str]]:
        if not customer_ids and claim is None:
            return {}
        # Ours as the load is asked (before its round trip goes out): a commit of ours in flight may land
        # after Redis answers this load and still have its reply handled first
        # (tests/contract/test_load_during_commit.py).
        next_seq = self._next_seq.get(partition, 1)
        # Tombstones (erasures.py) answer for customers without a hash. Where the partition is known to hold
        # some, their digests are read in this round trip; elsewhere one EXISTS says whether to look.
        known = partition in self._tombstones
        commands: list[Command] = []
        if claim is not None:
            meta = self._keys.partition_meta(partition)
            commands.append(("HMGET", meta, "fence", "seq", "owner", "offset", FORMAT_FIELD))
        commands += [("HGETALL", self._keys.customer(partition, cid)) for cid in customer_ids]
        tombs = self._keys.erased(partition)
        if customer_ids:
            commands.append(("HMGET", tombs, *map(digest, customer_ids)) if known else ("EXISTS", tombs))
        rows = checked(await self._trips.send(commands))
        erasures = rows.pop() if customer_ids else 0
        if claim is not None:
            fence, seq, owner, offset, kept = rows.pop(0)
            # day counters of an earlier segstream (weeks.py): refused here, before anything is applied, not
            # in `claim` (a rebalance listener, whose errors aiokafka only logs)
            check_format(self._keys.namespace, offset, kept)
            stored_owner = None if owner is None else _text(owner)
            check_standing(claim, _int(fence), _int(seq) or 0, next_seq, stored_owner)
        found = {cid: _decode(row) for cid, row in zip(customer_ids, rows, strict=True) if row}
        if not customer_ids:
            return found
        if known:  # a customer with a hash came back after its erasure: the hash is the customer
            found.update(tombstones(customer_ids, cast(list[bytes | None], erasures), found))
        elif erasures:
            self._tombstones.add(partition)
            missing = [cid for cid in customer_ids if cid not in found]
            if missing:  # customers without a hash may have been erased
                erased = await self._r.hmget(tombs, [digest(cid) for cid in missing])
                found.update(tombstones(missing, erased, found))
        return found

    async def commit(
        self, claim: Claim, offset: int | None, watermark_us: int | None, writes: Sequence[CustomerWrite]
    ) -> None:
        p = claim.partition
        seq = self._next_seq.get(p, 1)
        keys = [self._keys.partition_meta(p), self._keys.due(p)]
        parts = write_parts(writes)
        args: list[str | int | bytes] = [
            f"{claim.fence}:{seq}:{claim.owner}" if claim.owner else f"{claim.fence}:{seq}",
            "" if offset is None else offset,
            "" if watermark_us is None else watermark_us,
        ]
        if parts:  # one argument for every customer write (encoded here: redis-py refuses surrogateescape)
            args += [f"{len(writes)}:{len(parts)}", pack(parts)]
        else:
            args.append(0)
        keys += [self._keys.customer(p, w.customer_id) for w in writes]
        delta = writes.delta if isinstance(writes, WriteBatch) else None
        chunks: set[int] = set()  # `o:` chunks, and the same `q:` ones
        if delta is not None and not delta.is_empty():
            self._index_ops(p, delta, keys, args)
            if delta.created or delta.members_add or delta.members_remove:
                erased = [w.customer_id for w in writes if w.delete]
                chunks = declared_chunks(delta, erased, self._next_ordinal.get(p))
        dues, unordered = due_chunks(writes, delta)  # `q:` chunks beyond those of `chunks`
        due_chunk = self._keys.due_chunk
        for attempt in range(1, 4):
            try:
                # 'DUP': an earlier attempt of this commit had landed
                declared = [self._keys.ordinals(p, c) for c in chunks]
                declared += [due_chunk(p, c) for c in chunks | dues] + [due_chunk(p, UNORDERED)] * unordered
                reply = await self._commit(keys=keys + declared, args=args)
                break
            except ResponseError as exc:
                refused = CHUNKS.match(str(exc))
                if refused is None:
                    raise refusal(p, exc) from exc
                if attempt == 3:
                    message = f"partition {p}: the commit script still names undeclared chunks: {exc}"
                    raise RuntimeError(message) from exc
                # nothing was written: declare the chunks it named and send the same commit again (a retry
                # of this batch after an outage declares them too: they stay on the delta)
                self.chunk_refusals += 1
                named = refused[2].split()
                unordered = unordered or UNORDERED in named
                self.last_refused = tuple(int(n) for n in named if n != UNORDERED)
                self._next_ordinal[p] = int(refused[1])
                chunks.update(self.last_refused)
                if delta is not None:
                    delta.undeclared.update(self.last_refused)
        if self._claims.get(p, (claim.fence, claim.owner)) != (claim.fence, claim.owner):
            # landed under an earlier claim of ours, its reply handed back after we claimed the partition
            # again: the new claim read the sequence (and ordinals) from Redis, with this commit in them;
            # moving them back would make our next commit look like a retry ('DUP') and never be written
            return
        self._next_seq[p] = seq + 1
        if delta is not None and delta.erasures:
            self._tombstones.add(p)
        self._learn(p, reply, keys, delta)

    def _learn(self, p: int, reply: object, keys: list[str], delta: IndexDelta | None) -> None:
        """Keep the partition's ordinal counter and write each ordinal the commit gave into the customer's
        mapping (the worker's cache), so the next commit declares the right chunks."""
        if not isinstance(reply, list):  # 'DUP': what the landed attempt gave is unknown here
            self._next_ordinal[p] = None
            return
        if reply[1] >= 0:
            self._next_ordinal[p] = int(reply[1])
        if delta is None:
            return
        mappings, befores, began = delta.mappings, delta.befores, set(delta.created)
        for cid, mapping in mappings.items():  # the ordinal kept (a mapping copied before it was known)
            if ORDINAL not in mapping and cid not in began:
                before = befores.get(cid)
                if before is not None and ORDINAL in before:
                    cast(MutableMapping[str, str], mapping)[ORDINAL] = before[ORDINAL]
        prefix = len(self._keys.customer(p, ""))
        for k, ordinal in zip(reply[2::2], reply[3::2], strict=True):  # the ordinals given
            given = mappings.get(keys[k - 1][prefix:])
            if given is not None:
                cast(MutableMapping[str, str], given)[ORDINAL] = str(ordinal)

    def _index_ops(self, p: int, index: IndexDelta, keys: list[str], args: list[str | int | bytes]) -> None:
        """Append the index delta as the script's generic op list (name, key index, n_args, args...)."""
        slots = {key: n for n, key in enumerate(keys, 1)}

        def slot(key: str) -> int:
            n = slots.get(key)
            if n is None:
                keys.append(key)
                n = slots[key] = len(keys)
            return n

        ks = self._keys

        def op(name: str, key: int, items: Sequence[str | bytes]) -> None:
            """One op, its args packed into one argument (`commit_script.pack`)."""
            args.extend((name + "*", key, len(items), pack(items)))

        def counters(key: int, pairs: list[tuple[str, int]]) -> None:
            op("HINCRBY", key, [text for name, d in pairs for text in (name, str(d))])

        if index.created or index.members_add or index.members_remove:
            op("BITS", 1, bits_entries(index, p, ks, slot))
        for grid, pairs in index.kpi_fields().items():
            counters(slot(ks.kpis(p, grid)), pairs)
        weeks: set[str] = set()  # listed in the partition's `w` set, so readers need no scan
        for (grid, week), pairs in index.move_fields().items():
            counters(slot(ks.moves(p, grid, week)), pairs)
            weeks.add(week)
        days, periods = index.daily_fields()
        for (grid, week), pairs in days.items():
            counters(slot(ks.segment_days(p, grid, week)), pairs)
            weeks.add(week)
        for (grid, year), pairs in periods.items():
            counters(slot(ks.segment_periods(p, grid, year)), pairs)
        if weeks:
            op("SADD", slot(ks.weeks(p)), sorted(weeks))
        if index.erasures:  # tombstones: an erased customer's later-arriving older events have no effect
            op(
                "HSET",
                slot(ks.erased(p)),
                [x for c, us in index.erasures.items() for x in (digest(c), str(us))],
            )
        for pair, pairs in index.cross_fields().items():
            counters(slot(ks.crosstab(p, pair)), pairs)
        if index.swept_us is not None:  # KEYS[1], the partition's meta hash
            op("HSET", 1, ["sweeping", str(index.swept_us)])

    async def due(self, partition: int, until_us: int, limit: int) -> list[str]:
        return await due_customers(self._r, self._keys, partition, until_us, limit)

    async def customer_ids(self, partition: int) -> AsyncIterator[str]:
        head = len(self._keys.customer(partition, ""))
        pattern, meta = self._keys.customer_pattern(partition), self._keys.partition_meta(partition)
        async for raw in scan_slot(self._r, pattern, meta):
            yield (raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else str(raw))[head:]

    async def release(self, claim: Claim) -> None:
        """Forget our claim's owner id if it is still ours (fence and number stay: they only ever grow)."""
        meta = self._keys.partition_meta(claim.partition)
        await self._r.register_script(_RELEASE)(keys=[meta], args=[claim.owner])  # EVALSHA: in the ACL

    async def read_meta(self, partition: int) -> tuple[int | None, int | None]:
        offset, watermark = await self._r.hmget(self._keys.partition_meta(partition), ["offset", "watermark"])
        return _int(offset), _int(watermark)

    async def publish_metrics(self, fields: Mapping[str, str | int | float]) -> None:
        mapping: dict[str | bytes, str | int | float] = {k: v for k, v in fields.items()}
        await self._r.hset(self._keys.metrics(), mapping=mapping)  # type: ignore[arg-type]

    async def retire_metrics(self, summed: list[tuple[str, str]], others: list[str]) -> None:
        await self._r.register_script(FOLD)(keys=[self._keys.metrics()], args=fold_args(summed, others))

    async def read_indexes(self, partition: int) -> IndexSnapshot:
        """Every index key of the partition, read with SCAN (diagnostics and tests only)."""
        tag = self._keys.partition_meta(partition)[: -len(":meta")]
        snap = IndexSnapshot()
        async for raw in scan_slot(self._r, f"{tag}:*", self._keys.partition_meta(partition)):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            kind, _, rest = key[len(tag) + 1 :].partition(":")
            if kind == "m":
                grid, _, segment = rest.rpartition(":")
                bitmap = await raw_reply(self._r, "GET", key)
                members = set(await ids_of(self._r, self._keys, partition, bitmap_ordinals(bitmap)))
                if members:
                    snap.members[(grid, segment)] = members
            elif kind in ("k", "d", "t", "x", "r"):
                row = {_text(k): int(v) for k, v in (await self._r.hgetall(key)).items()}
                kinds = {"k": snap.kpis, "d": snap.daily, "t": snap.moves, "x": snap.cross}
                if kind in ("d", "t", "r"):  # a week's (a year's) key: merged into the grid's
                    rest, _, at = rest.rpartition(":")  # the days (the periods) named: `at` a week (year)
                    row = {
                        (period_named(n, at) if kind == "r" else day_field(at, n)): v for n, v in row.items()
                    }
                kinds.get(kind, snap.daily).setdefault(rest, {}).update(row)
        return snap


def _int(value: bytes | str | None) -> int | None:
    return None if value is None else int(value)


def _decode(row: dict[bytes, bytes] | dict[str, str]) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (
            v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v
        )
        for k, v in row.items()
    }


def applied_per_partition(client: SyncRedis, keys: KeySpace, partitions: int) -> tuple[int, ...]:
    """Records of each events partition the state in Redis accounts for: the stored offset + 1."""
    with client.pipeline(transaction=False) as pipe:
        for p in range(partitions):
            pipe.hget(keys.partition_meta(p), "offset")
        values = pipe.execute()
    return tuple(0 if v is None else int(v) + 1 for v in values)


def applied_events(client: SyncRedis, keys: KeySpace, partitions: int) -> int:
    """How many records of the events topic the state in Redis accounts for (progress of a run or replay)."""
    return sum(applied_per_partition(client, keys, partitions))
