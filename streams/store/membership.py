"""Segment membership as bitmaps over per-partition customer ordinals (storage format 2, issue 13).

Why: a set entry per grid per customer cost ~775 bytes per customer; a bit per (grid, segment) at a dense
ordinal costs a few bytes, plus one ordinal -> id entry per customer. Counts stay O(1) in the KPI hashes.

- Each lifetime of a customer in a partition (creation to erasure) takes the partition's next ordinal (meta
  field `ordinals`), in log order, inside the commit script; the customer hash holds it as `_o`. An erased
  customer's ordinal is never reused: its bits are cleared and its map entry removed in the erasing commit.
- `o:<ordinal // CHUNK>` hashes map `<ordinal % CHUNK>` to the customer id; CHUNK (128) stays well under
  `hash-max-listpack-entries` (512 by default; managed services rarely lower it), so every chunk is a compact
  listpack, and an HMGET in it scans a short list.
- `m:<grid>:<segment>` is a bitmap (a Redis string): bit `ordinal` is set while the customer is in the
  segment (SETBIT numbering: bit 0 is the most significant bit of byte 0).

Listing walks a bitmap in byte windows (GETRANGE) and maps ordinals to ids with HMGET on the chunks; the
position in the walk (an ordinal) is the cursor, so pages are exact and a member listed once is never listed
again by the same walk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final, cast

from redis.asyncio import Redis

from streams.store.indexes import ORDINAL, IndexDelta
from streams.store.keys import KeySpace
from streams.store.stored_state import StoredFormatError
from streams.store.weeks import FORMAT_FIELD, check_format

CHUNK: Final = 128  # ordinals per `o:` hash
ORDINALS: Final = "ordinals"  # partition meta field: the next ordinal to give
WINDOW: Final = 8192  # bitmap bytes per GETRANGE: 65,536 ordinals

# the set bits of each byte value, most significant first (SETBIT numbering)
_BITS: Final = tuple(tuple(b for b in range(8) if value & (0x80 >> b)) for value in range(256))


class OlderFormat(StoredFormatError):
    """The namespace's membership keys are not bitmaps: built by an older segstream (CLI exit 3, HTTP 409)."""


async def raw_reply(client: Redis, *command: str | int) -> bytes:
    """A command's bytes reply, undecoded whatever the client decodes (bitmaps are binary)."""
    reply = await cast(Any, client).execute_command(*command, NEVER_DECODE=[])
    return bytes(reply or b"")


def declared_chunks(index: IndexDelta, erased: Iterable[str], next_ordinal: int | None) -> set[int]:
    """The `o:` chunks a commit of `index` writes, as far as the client knows: the stored ordinals of the
    customers erased or re-created, and the ordinals the lifetimes begun take. A chunk it needs and was not
    given (a customer whose ordinal the client never saw, one entering a segment without a lifetime
    reported) is refused by commit.lua, naming it, and the commit is sent again with it."""
    befores, created = index.befores, index.created
    chunks = set(index.undeclared)
    for cid in (*created, *erased):
        before = befores.get(cid)
        ordinal = None if before is None else before.get(ORDINAL)
        if ordinal is not None:
            chunks.add(int(ordinal) // CHUNK)
    if next_ordinal is not None and created:
        chunks.update(range(next_ordinal // CHUNK, (next_ordinal + len(created) - 1) // CHUNK + 1))
    return chunks


def chunk_of(ordinal: int) -> tuple[int, str]:
    """The `o:` chunk number and the field that hold `ordinal`'s customer id."""
    chunk, field = divmod(ordinal, CHUNK)
    return chunk, str(field)


def ordinals_in(window: bytes, first_bit: int, start: int = 0) -> Iterator[int]:
    """The set bits of `window` (whose bit 0 is ordinal `first_bit`) at ordinals >= `start`, ascending."""
    bits = _BITS
    for at, value in enumerate(window):
        if value:
            base = first_bit + 8 * at
            for b in bits[value]:
                if base + b >= start:
                    yield base + b


def bitmap_ordinals(bitmap: bytes) -> list[int]:
    return list(ordinals_in(bitmap, 0))


async def ids_of(client: Redis, keys: KeySpace, partition: int, ordinals: Sequence[int]) -> list[str]:
    """The ids at `ordinals`, in order; an ordinal whose map entry is gone (erased meanwhile) is skipped."""
    if not ordinals:
        return []
    wanted: dict[int, list[tuple[int, str]]] = {}
    for n, ordinal in enumerate(ordinals):
        chunk, field = chunk_of(ordinal)
        wanted.setdefault(chunk, []).append((n, field))
    async with client.pipeline(transaction=False) as pipe:
        for chunk, fields in wanted.items():
            pipe.hmget(keys.ordinals(partition, chunk), [f for _, f in fields])
        replies = await pipe.execute()
    found: list[Any] = [None] * len(ordinals)
    for (_, fields), values in zip(wanted.items(), replies, strict=True):
        for (n, _), value in zip(fields, values, strict=True):
            found[n] = value
    return [v.decode() if isinstance(v, bytes) else v for v in found if v is not None]


async def walk_end(client: Redis, keys: KeySpace, partition: int) -> int:
    """The partition's next ordinal now: a walk started here lists no ordinal from it on. A customer erased
    and back meanwhile takes a new ordinal (never an old one): without this bound a walk that listed it at
    its old ordinal would list it again at its new one. A partition of an earlier layout is refused, as by
    every reader (`weeks.check_format`)."""
    value, offset, kept = await client.hmget(
        keys.partition_meta(partition), [ORDINALS, "offset", FORMAT_FIELD]
    )
    check_format(keys.namespace, offset, kept)
    return 0 if value is None else int(value)


async def page(
    client: Redis,
    keys: KeySpace,
    partition: int,
    grid: str,
    segment: str,
    start: int,
    count: int,
    end: int | None = None,
) -> tuple[list[str], int | None]:
    """Up to `count` members of the segment in the partition at ordinals >= `start` (and < `end`, when
    given: `walk_end` when the walk began), and the ordinal to go on from (None: the walk is done)."""
    key = keys.members(partition, grid, segment)
    found: list[int] = []
    byte = start // 8
    while True:
        try:
            window = await raw_reply(client, "GETRANGE", key, byte, byte + WINDOW - 1)
        except Exception as exc:
            if "WRONGTYPE" in str(exc):
                raise OlderFormat(older_format(keys)) from exc
            raise
        for ordinal in ordinals_in(window, 8 * byte, start):
            if end is not None and ordinal >= end:
                return await ids_of(client, keys, partition, found), None
            found.append(ordinal)
            if len(found) == count:
                return await ids_of(client, keys, partition, found), ordinal + 1
        if len(window) < WINDOW or (end is not None and 8 * (byte + WINDOW) >= end):
            return await ids_of(client, keys, partition, found), None
        byte += WINDOW


def older_format(keys: KeySpace) -> str:
    return (
        f"namespace {keys.namespace!r} keeps segment membership in an older format (sets, not bitmaps): "
        f"rebuild it with `segstream replay`"
    )
