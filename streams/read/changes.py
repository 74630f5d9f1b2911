"""Who entered and who left a segment over a period, from the transitions topic: incremental syncs to a CRM.

The transitions topic is the authoritative log of every move (invariant 3: a transition for every state
change, none without one, redeliveries with the same id). A period is a range of offsets per partition:
from the first offset published at or after `since` (Kafka's offsets-for-times index on record timestamps)
or from a cursor, up to the end offsets when the request starts, or to the first offset published at or
after `until`. Every transition of the range that touches the segment (from it or to it) is read, repeats of
an id are dropped (first occurrence kept), and each customer is netted: in the segment before its first such
transition and not after its last one: `left`; the other way round: `entered`; in and out again or out and in
again: nothing. An erasure is never netted away: a customer in the segment at the start and erased during the
period is `left` to none at its erasure (the CRM must forget it), and `entered` again if it is back in the
segment at the end (a new customer under the same id); the rows are sorted `left` first, so applying them in
order leaves such a customer in. Memory follows the customers that moved in the period, not the segment's
size.

Exactness and its limits (docs/export.md):
- the next cursor is the end of this range: consecutive syncs from cursor to cursor cover every transition
  exactly once (offsets, not clocks, so no record can fall between two syncs);
- a date maps to offsets by record timestamps; the topic must still hold the whole range: a period reaching
  before what retention kept is refused (`ChangesError`), never answered incompletely;
- a transition republished after a worker crash carries the same id: repeats within the period are dropped,
  and so are copies of moves published in the `LOOKBACK` records before the period (read for their ids).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from streams.read.members_cursor import TAG_LENGTH, namespace_tag
from streams.read.netting import Change, end_states, net_changes, touches
from streams.settings import Settings

__all__ = [
    "Change",
    "ChangesError",
    "Window",
    "changes",
    "end_states",
    "net_changes",
    "parse_cursor",
    "window",
]


class ChangesError(ValueError):
    """A period that cannot be answered exactly: exit code 2; HTTP 400, or 404 when `missing` (the topic
    does not hold the period: retention, or a cursor of another topic)."""

    exit_code = 2

    def __init__(self, message: str, missing: bool = False, moved: bool = False) -> None:
        super().__init__(message)
        self.missing = missing
        self.moved = moved  # the cursor is of another namespace or build (HTTP 409)


CHANGE_COLUMNS = ("customer_id", "change", "from", "to", "at", "transition_id")
LOOKBACK = 50_000
"""Records per partition read before a period for their ids only. A worker that crashed between publishing a
batch's transitions and committing it republishes them (same ids) when the partition is taken again, right
after the originals in the partition's order (the transitions topic is partitioned by customer id like the
events topic); a sync that ended between the two must not count the copies again. A batch publishes at most
a few tens of thousands of transitions per partition (SEGSTREAM_BATCH_MAX_EVENTS, SWEEP_MAX_CUSTOMERS)."""


@dataclass
class Window:
    """Offsets `[starts[p], ends[p])` of each partition of the transitions topic, and `[lookback[p],
    starts[p])`: read only for the ids of the moves published just before (see `LOOKBACK`)."""

    starts: dict[int, int]
    ends: dict[int, int]
    lookback: dict[int, int] = field(default_factory=dict)
    build: str | None = None  # of the namespace the sync's segments are of (`readable.build_of`)

    def cursor(self) -> str:
        """Where the next period starts: `<partition>:<offset>` per partition, comma-separated, then `@` and
        the tag of the namespace's build: after a promote (or a rebuild), the moves that made the namespace
        now read are not on the topic, so a sync from this cursor is refused (`moved`)."""
        offsets = ",".join(f"{p}:{o}" for p, o in sorted(self.ends.items()))
        return offsets if self.build is None else f"{offsets}@{namespace_tag(self.build)}"


_TAG = re.compile(f"[0-9a-f]{{{TAG_LENGTH}}}")
_NUMBER = re.compile(r"[0-9]{1,19}")  # a Kafka offset is an int64; int() of >4,300 digits raises (a 500)


def check_build(text: str, build: str | None) -> None:
    """Refuse a cursor whose tag names another build of the namespace than `build` (None: not checked; a
    cursor of an earlier version has no tag)."""
    _, sep, tag = text.strip().partition("@")
    if sep and build is not None and _TAG.fullmatch(tag) and tag != namespace_tag(build):  # else malformed
        raise ChangesError(
            "this cursor was given for another namespace than the one read now (a `segstream promote` or a"
            " rebuild since): the moves that made it are not on the transitions topic; export the segment in"
            " full and start a new cursor from that export",
            moved=True,
        )


def parse_cursor(text: str, partitions: Iterable[int]) -> dict[int, int]:
    wanted = sorted(partitions)
    out: dict[int, int] = {}
    text, sep, tag = text.strip().partition("@")
    if sep and not _TAG.fullmatch(tag):
        raise ChangesError(
            f"malformed cursor {text + sep + tag!r}: pass back the cursor a previous sync printed"
        )
    for part in text.split(","):
        head, sep, tail = part.partition(":")
        if not sep or not _NUMBER.fullmatch(head) or not _NUMBER.fullmatch(tail):
            raise ChangesError(f"malformed cursor {text!r}: pass back the cursor a previous sync printed")
        if int(head) in out:  # the last value would win in silence
            raise ChangesError(f"cursor {text!r} names partition {head} twice")
        out[int(head)] = int(tail)
    if sorted(out) != wanted:
        raise ChangesError(f"cursor {text!r} does not name the topic's partitions {wanted}")
    return out


def _ms(moment: datetime) -> int:
    """Epoch milliseconds for Kafka's time index (no record is older than the epoch)."""
    return max(0, int(moment.timestamp() * 1000))


async def window(
    consumer: Any,
    topic: str,
    partitions: list[int],
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    lookback_records: int = LOOKBACK,
) -> Window:
    """The period as offsets (see the module doc); refuses one that retention already cut. A period ending
    before it begins is empty, as a KPI period is (a 400 would refuse a request its schema allows)."""
    from aiokafka import TopicPartition

    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    first = await consumer.beginning_offsets(tps)
    last = await consumer.end_offsets(tps)
    starts = {tp.partition: first[tp] for tp in tps}  # neither since nor a cursor: the whole log
    if cursor is None and since is None and any(first[tp] > 0 for tp in tps):
        raise ChangesError(
            "the transitions topic no longer holds its beginning (retention): give since or a cursor",
            missing=True,
        )
    if cursor is not None:
        given = parse_cursor(cursor, partitions)
        for tp in tps:
            if not first[tp] <= given[tp.partition] <= last[tp]:
                raise ChangesError(
                    f"cursor offset {tp.partition}:{given[tp.partition]} is outside what the topic holds"
                    f" ({first[tp]}..{last[tp]}): retention removed part of the period (or the topic was"
                    " made again); export the segment in full and sync from a new cursor",
                    missing=True,
                )
            starts[tp.partition] = given[tp.partition]
    if since is not None:  # with a cursor too: the later of the two starts
        at = await consumer.offsets_for_times({tp: _ms(since) for tp in tps})
        for tp in tps:
            offset = last[tp] if at[tp] is None else at[tp].offset
            if cursor is None and first[tp] > 0 and offset == first[tp]:
                raise ChangesError(
                    f"the transitions topic no longer holds everything since {since.isoformat()}"
                    f" (partition {tp.partition} starts at offset {first[tp]}, retention): choose a later"
                    " date, or export the segment in full",
                    missing=True,
                )
            starts[tp.partition] = max(starts[tp.partition], offset)
    if until is not None:  # at or before the start: an empty period
        at = await consumer.offsets_for_times({tp: _ms(until) for tp in tps})
        ends = {tp.partition: last[tp] if at[tp] is None else at[tp].offset for tp in tps}
    else:
        ends = {tp.partition: last[tp] for tp in tps}
    ends = {p: max(ends[p], starts[p]) for p in ends}
    lookback = {tp.partition: max(first[tp], starts[tp.partition] - lookback_records) for tp in tps}
    return Window(starts, ends, lookback)


async def _records(consumer: Any, topic: str, span: Window) -> AsyncIterator[tuple[bool, dict[str, Any]]]:
    """(in the period, `data`) of every transition of the lookback and the period, partition by
    partition, in offset order."""
    from aiokafka import TopicPartition
    from aiokafka.errors import OffsetOutOfRangeError

    for partition in sorted(span.starts):
        start, end = span.starts[partition], span.ends[partition]
        if start >= end:
            continue
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        position = span.lookback.get(partition, start)
        consumer.seek(tp, position)
        while position < end:
            try:
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=5000)
            except OffsetOutOfRangeError:  # retention deleted records since `window` looked
                position = await _after_retention(consumer, tp, start, position)
                continue
            for message in batch.get(tp, []):
                if message.offset >= end:
                    break
                try:
                    data = orjson.loads(message.value)["data"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    raise ChangesError(
                        f"record {partition}:{message.offset} of {topic!r} is not a transition"
                    ) from None
                yield message.offset >= start, data
            position = await consumer.position(tp)


async def _after_retention(consumer: Any, tp: Any, start: int, position: int) -> int:
    """Where a read at `position` goes on once retention deleted records under it: the partition's new first
    offset if only look-back records went (read for their ids only); refused if a record of the period went,
    or if nothing went below `position` (the log was cut at its end, or the topic made again)."""
    first = (await consumer.beginning_offsets([tp]))[tp]
    if first <= position:
        raise ChangesError(
            f"partition {tp.partition} of the transitions topic no longer holds offset {position} (cut or"
            " made again while it was read): export the segment in full and sync from a new cursor",
            missing=True,
        )
    if first > start:
        raise ChangesError(
            f"retention removed records of the period while they were read (partition {tp.partition} now"
            f" starts at offset {first}, the period at {start}): choose a later start, or export in full",
            missing=True,
        )
    consumer.seek(tp, first)
    return int(first)


async def changes(
    settings: Settings,
    grid: str,
    segment: str,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    lookback: int = LOOKBACK,
    after_export: bool = False,
    build: str | None = None,
) -> tuple[list[Change], Window]:
    """Net entries and exits of `segment` over the period (`after_export`: end states, see
    `netting.end_states`), and the period's offsets (its `cursor()` is where the next sync starts). `build`:
    of the namespace read (`readable.build_of`), checked against the cursor's and named in the next one."""
    from aiokafka import AIOKafkaConsumer

    if cursor is not None:
        check_build(cursor, build)

    topic = settings.transitions_topic
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 << 20,
        auto_offset_reset="none",  # a seek retention made out of range raises: "latest" jumped to the end
        **settings.kafka_security(),
    )
    await consumer.start()
    try:
        partitions = await _partitions(settings, topic)
        span = await window(consumer, topic, partitions, since, until, cursor, lookback)
        span.build = build
        before: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        async for inside, data in _records(consumer, topic, span):
            if touches(data, grid, segment):
                (records if inside else before).append(data)
    finally:
        await consumer.stop()
    if after_export:
        return end_states(records, grid, segment, before), span
    return net_changes(records, grid, segment, {t["id"] for t in before}), span


async def _partitions(settings: Settings, topic: str) -> list[int]:
    """The topic's partitions, from the admin API (describing a missing topic might create it)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security())
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            raise ChangesError(f"transitions topic {topic!r} not found (SEGSTREAM_TRANSITIONS_TOPIC)")
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(p["partition"] for t in described if t.get("topic") == topic for p in t["partitions"])
