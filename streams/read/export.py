"""Audience export: the members of one segment (or audience) with chosen columns, as CSV or JSON lines,
streamed in constant memory whatever the number of members.

Per partition, the membership bitmap `<tag>:m:<grid>:<segment>` is walked in ordinal order a chunk of
members at a time (streams/store/membership.py: GETRANGE windows, ordinals mapped to ids with HMGET) and the
columns of each chunk are read with pipelined HMGET; rows are encoded and handed to the writer chunk by
chunk, so memory follows the chunk size, never the member count (`benchmarks/bench_export.py`). Used by
`segstream export` and by the HTTP API.

What an export guarantees while workers write (there is no snapshot across partitions):
- every row is a member at the instant its row was read, and its columns come from one HMGET (atomic per
  customer): a row never mixes two states of a customer;
- a customer that is a member for the whole export is listed; one that enters or leaves meanwhile may be
  listed or not (it is listed when it enters ahead of the walk), and when listed its columns are the newer
  ones; one that left between the bitmap read and its HMGET is left out (its hash no longer says the
  segment);
- each customer is listed at most once: the walk goes forward through the ordinals, and a customer erased
  and re-created meanwhile has only its new ordinal (the old one's map entry went with the erasure).
For an exact incremental sync, export once, then apply the changes of the transitions topic from that
point (`streams/read/changes.py`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis

from segmentation.state_fields import texts_of
from segmentation.state_mapping import AUDIENCE_FIELD, FORMAT_1, NOT_MEMBER, STATE, VERBATIM, stored_name
from streams.read.columns import Column, Raw
from streams.read.members_walk import WalkMoved, gone
from streams.read.profile import Money
from streams.store import membership
from streams.store.keys import KeySpace
from streams.store.readable import current_standing
from streams.store.replies import text
from streams.store.stored_state import StoredFormatError, stored_state
from streams.store.weeks import FORMAT_FIELD, check_format

__all__ = ["CHUNK", "FORMATS", "Format", "Selection", "check_layout", "encode_rows", "member_rows"]

CHUNK = 1000  # members per bitmap step and per HMGET pipeline: ~1000 rows in flight at most
Format = Literal["csv", "jsonl"]
FORMATS: dict[str, str] = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


@dataclass(frozen=True)
class Selection:
    """What to export: the members of `segment` in `grid`, with `columns`."""

    grid: str
    segment: str
    columns: tuple[Column, ...]

    def fields(self) -> list[str]:
        """The columns' fields, in order (storage-format-1 names: `segmentation.state_fields`)."""
        out: list[str] = []
        for column in self.columns:
            out += column.fields
        return out

    def stored(self) -> list[str]:
        """Hash fields read per member: the guard (the grid's segment, stored under the grid's name) first,
        then the columns' fields when each is stored as readers write it (`state_mapping.VERBATIM`), else
        the packed `state` first (`state_mapping.stored_name`: where each is stored). `state` is read too
        for the members of an audience's `not_member`, which the hash leaves absent: its presence tells such
        a member from a customer erased since the membership page was read."""
        named = self.fields()
        fields = [stored_name(f) for f in named]
        if all(f in VERBATIM for f in named) and not self.absent():
            return [self.grid, *fields]
        return [self.grid, STATE, *fields]

    def absent(self) -> bool:
        """Whether the members' hashes leave the guard field absent (an audience's `not_member`)."""
        return self.segment == NOT_MEMBER and self.grid.startswith(AUDIENCE_FIELD)

    def still_member(self, raw: Sequence[Any]) -> bool:
        """Whether a member's HMGET answer (`stored` order) still shows it in the segment."""
        if self.absent():
            return raw[0] is None and raw[1] is not None  # no `member` answer, and a hash
        return _opt(raw[0]) == self.segment


Row = tuple[str, list[str | None]]  # customer id, HMGET answer


async def check_layout(client: aioredis.Redis, keys: KeySpace, partitions: Sequence[int]) -> None:
    """Refuse a namespace of an earlier layout (`weeks.check_format`) before anything is read or sent: its
    hashes have no `<grid>` field, so every member would drop out as "no longer one" (an empty export)."""
    async with client.pipeline(transaction=False) as pipe:
        for partition in partitions:
            pipe.hmget(keys.partition_meta(partition), ["offset", FORMAT_FIELD])
        metas = await pipe.execute()
    for offset, kept in metas:
        check_format(keys.namespace, offset, kept)


async def member_rows(
    client: aioredis.Redis,
    keys: KeySpace,
    partitions: Sequence[int],
    selection: Selection,
    chunk: int = CHUNK,
    standing: str | None = None,
) -> AsyncIterator[list[Row]]:
    """Chunks of (customer id, stored fields) of the current members, partition by partition. `standing`: of
    the namespace (`readable.standing_of`), checked before each partition and after the last: a namespace
    dropped or built again meanwhile stops the export (`WalkMoved`), never ends it short."""
    fields = selection.fields()
    stored = selection.stored()
    packed = len(stored) > len(fields) + 1
    segment = selection.segment
    await check_layout(client, keys, partitions)
    for partition in [*partitions, None]:
        now = None if standing is None else await current_standing(client, keys)
        if now != standing:
            raise WalkMoved(gone(keys.namespace, standing or "", now or ""))
        if partition is None:
            return
        position: int | None = 0
        end = await membership.walk_end(client, keys, partition)  # lifetimes begun meanwhile: not listed
        while position is not None:
            names, position = await membership.page(
                client, keys, partition, selection.grid, segment, position, chunk, end
            )
            if not names:
                continue
            async with client.pipeline(transaction=False) as pipe:
                for cid in names:
                    pipe.hmget(keys.customer(partition, cid), stored)
                replies = await pipe.execute()
            kept = [
                (
                    cid,
                    _decoded(raw[1:], fields, keys.namespace) if packed else [_verbatim(v) for v in raw[1:]],
                )
                for cid, raw in zip(names, replies, strict=True)
                if selection.still_member(raw)  # still a member when its row was read
            ]
            if kept:
                yield kept


def _decoded(raw: list[Any], fields: list[str], namespace: str) -> list[str | None]:
    """The fields' texts from a member's packed state and readable fields (`raw`: `state`, then `fields`);
    a hash without a packed state is refused (another storage format)."""
    if raw[0] is None:  # the guard field is there, the state is not: a hash of storage format 1
        raise StoredFormatError(f"namespace {namespace!r}: {FORMAT_1}")
    row = {stored_name(f): text(v) for f, v in zip(fields, raw[1:], strict=True) if v is not None}
    row[STATE] = text(raw[0])
    return texts_of(stored_state(row, namespace), fields)


def _verbatim(value: str | bytes | None) -> str | None:
    """A `VERBATIM` field's text: absent is "" (a grid with no segment)."""
    return "" if value is None else text(value)


def _opt(value: str | bytes | None) -> str | None:
    return text(value) if value is not None else None


def values_of(columns: Sequence[Column], customer_id: str, raw: Raw) -> list[Any]:
    """Each column's value for one member (`raw`: the HMGET answer without the guard field)."""
    out: list[Any] = []
    at = 0
    for column in columns:
        n = len(column.fields)
        out.append(customer_id if column.name == "customer_id" else column.value(raw[at : at + n]))
        at += n
    return out


async def encode_rows(
    chunks: AsyncIterator[list[Row]], columns: Sequence[Column], fmt: Format
) -> AsyncIterator[bytes]:
    """The export as bytes, a header first for CSV, then one block per chunk of rows."""
    names = [c.name for c in columns]
    if fmt == "csv":
        yield _csv([names])
        async for rows in chunks:
            yield _csv([[_cell(v) for v in values_of(columns, cid, raw)] for cid, raw in rows])
    else:
        async for rows in chunks:
            yield b"".join(
                orjson.dumps(dict(zip(names, values_of(columns, cid, raw), strict=True)), default=_json)
                + b"\n"
                for cid, raw in rows
            )


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def _cell(value: Any) -> str:
    """CSV text: empty for none, money as its major-unit amount (the currency is its own column)."""
    if value is None:
        return ""
    if isinstance(value, Money):
        return value.amount
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json(value: Any) -> Any:
    if isinstance(value, Money):
        return {"amount": value.amount, "currency": value.currency}
    raise TypeError(f"not serialisable: {type(value).__name__}")
