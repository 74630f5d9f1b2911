"""Replay sources: a JSONL file (optionally gzip), a CSV export of orders, or a Kafka topic.

Every source yields chunks (:class:`Chunk`) in log order: the records of a slice of the log, already split
by partition (as the worker takes them), each with the Kafka partition and offset it has (Kafka) or would
have (files), and for files the line number of each record. For a file, a line goes to
`partition_for(customer id)`, as the producers key events, and its offset is its rank among the lines of
that partition: the offsets a fresh topic fed with this file in order would give. So state replayed from a
file carries the same `_offset` fields and partition offsets as the live worker's that consumed the same
lines from such a topic. A line whose customer id cannot be recovered (truncated JSON) goes to partition 0.

A source can be limited to some partitions (`owned`): a replay split across processes gives each process
its partitions. A file is still read whole by each (offsets are ranks among *all* the file's lines), but
lines of other partitions are dropped before any object is made for them.
"""

from __future__ import annotations

import gzip
import io
import zlib
from array import array
from collections.abc import AsyncIterator, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from streams.sample.generator import recover_customer_id
from streams.store.partitioning import partition_of_key
from streams.topics.partition_count import PartitionCountChanged
from streams.worker.batch import Record

CHUNK = 10_000
NO_KEY_PARTITION = 0


@dataclass
class Chunk:
    """A slice of the log split by partition, in log order within each partition.

    `lines[p][i]` is the file line (1-based) of `records[p][i]`; empty for Kafka. Records are made here, once,
    in the worker's own type: no intermediate object per event, and the line numbers (needed only for the
    rare dead letter) cost 8 bytes each instead of a dict entry."""

    records: dict[int, list[Record]] = field(default_factory=dict)
    lines: dict[int, array[int]] = field(default_factory=dict)
    size: int = 0


@dataclass
class Progress:
    """What a source can say about how far it got: done/total in its own unit (bytes or records)."""

    done: int = 0
    total: int | None = None
    unit: str = "B"


_BOM: Final = b"\xef\xbb\xbf"


class FileSource:
    """JSON lines, one event per line; gzip when the file starts with the gzip magic. Blank lines skipped."""

    def __init__(self, path: Path, partitions: int) -> None:
        self.path = path
        self.partitions = partitions
        self.progress = Progress(0, path.stat().st_size, "B")
        self.blank_lines = 0

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        with self.path.open("rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream: Any = io.BufferedReader(gzip.GzipFile(fileobj=raw, mode="rb"), 1 << 20) if gz else raw
            number = 0
            try:
                for number, line in enumerate(stream, 1):
                    if number % 4096 == 0:
                        self.progress.done = raw.tell()
                    if number == 1 and line.startswith(_BOM):  # an editor's UTF-8 byte order mark: not JSON
                        line = line[len(_BOM) :]
                    yield number, line.rstrip(b"\r\n")
            except (EOFError, gzip.BadGzipFile, zlib.error) as exc:  # cut short or corrupted in transfer
                raise SourceError(
                    f"{self.path}: the gzip data is damaged after line {number}"
                    f" ({exc or type(exc).__name__}): the replay stops there; replay the whole file again"
                    " once it is complete"
                ) from None
            self.progress.done = self.progress.total or raw.tell()

    def keyed(self) -> Iterator[tuple[int, str | None, bytes]]:
        for number, line in self._lines():
            if not line.strip():
                self.blank_lines += 1
                continue
            yield number, recover_customer_id(line), line

    async def chunks(self, topic: str, owned: Collection[int] | None = None) -> AsyncIterator[Chunk]:
        for chunk in assign(self.keyed(), self.partitions, topic, owned):
            yield chunk


def assign(
    keyed: Iterable[tuple[int, str | None, bytes]],
    partitions: int,
    topic: str,
    owned: Collection[int] | None = None,
    chunk: int = CHUNK,
) -> Iterator[Chunk]:
    """Partition and number lines as a fresh topic would: partition by customer id, offsets 0, 1, ...
    (over all lines); keep only the `owned` partitions' (all when None)."""
    next_offset = [0] * partitions
    keep = [owned is None or p in owned for p in range(partitions)]
    out = Chunk()
    seen = 0
    for number, customer_id, line in keyed:
        key = None if customer_id is None else customer_id.encode()
        p = NO_KEY_PARTITION if key is None else partition_of_key(key, partitions)
        offset = next_offset[p]
        next_offset[p] = offset + 1
        seen += 1
        if keep[p]:
            records = out.records.get(p)
            if records is None:
                records = out.records[p] = []
                out.lines[p] = array("q")
            records.append(Record(topic, p, offset, key, line))
            out.lines[p].append(number)
            out.size += 1
        if seen >= chunk:
            yield out
            out, seen = Chunk(), 0
    if out.size:
        yield out


class SourceError(ValueError):
    """The source cannot be replayed as named (exit code 2: bad input)."""

    exit_code = 2


class KafkaSource:
    """A topic from the beginning or from the first offset at or after a timestamp, up to the end offsets
    seen at start (a replay ends; what arrives later is the live worker's job)."""

    def __init__(self, topic: str, since: datetime | None, settings: Any) -> None:
        self.topic = topic
        self.since = since
        self.settings = settings
        self.progress = Progress(0, None, "records")
        self.partitions: list[int] = []
        # partition -> offset of its last record before `since` (not replayed): the namespace stores it as
        # applied, so a worker continuing the namespace starts after it, as on the partitions replayed
        self.skipped: dict[int, int] = {}

    async def chunks(self, topic: str, owned: Collection[int] | None = None) -> AsyncIterator[Chunk]:
        """`topic`: the events topic the records are attributed to (the namespace's, as for a file)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from streams.topics import lenient_records

        lenient_records.install()  # as the worker's consumer: a header name that is not UTF-8 is read
        found = await self._partitions()
        self.partitions = [p for p in found if owned is None or p in owned]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_partition_fetch_bytes=4 << 20,
            fetch_max_bytes=32 << 20,
            **self.settings.kafka_security(),
        )
        await consumer.start()
        try:
            tps = [TopicPartition(self.topic, p) for p in self.partitions]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            if self.since is not None:
                ms = max(0, int(self.since.timestamp() * 1000))  # before 1970: the start (aiokafka: no < 0)
                at = await consumer.offsets_for_times({tp: ms for tp in tps})
                starts = {tp: (ends[tp] if at[tp] is None else at[tp].offset) for tp in tps}
                self.skipped = {tp.partition: starts[tp] - 1 for tp in tps if starts[tp] > 0}
            for tp in tps:
                consumer.seek(tp, starts[tp])
            self.progress.total = sum(ends[tp] - starts[tp] for tp in tps)
            remaining = {tp for tp in tps if starts[tp] < ends[tp]}
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=CHUNK)
                out = Chunk()
                for tp, messages in batch.items():
                    records = [
                        Record(topic, m.partition, m.offset, m.key, m.value, m.timestamp)
                        for m in messages
                        if m.offset < ends[tp]
                    ]
                    if records:
                        out.records.setdefault(tp.partition, []).extend(records)
                        out.size += len(records)
                # Every partition, not only those with records in this poll: a fetch that held only a
                # transaction's marker or aborted records moves the position without returning a record
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
                self.progress.done += out.size
                if out.size:
                    yield out
        finally:
            await consumer.stop()

    async def check(self) -> None:
        """SourceError now if the topic does not exist, PartitionCountChanged if its partition count is not
        SEGSTREAM_TOPIC_PARTITIONS: before the target namespace is touched."""
        await self._partitions()

    async def _partitions(self) -> list[int]:
        """The topic's partitions; refused unless there are SEGSTREAM_TOPIC_PARTITIONS of them. Records keep
        their partition and offset, and a customer's state lives in `partition_for(id, that setting)`: with
        fewer partitions, every record whose customer the setting puts elsewhere would be a dead letter (the
        replay 'succeeding' without them); with more, the replay would stop half way at the first record of
        a partition it does not own (as the worker refuses such a topic at its start)."""
        found = await self._listed()
        configured = self.settings.topic_partitions
        if len(found) != configured:
            raise PartitionCountChanged(
                f"topic {self.topic!r} has {len(found)} partitions but SEGSTREAM_TOPIC_PARTITIONS is"
                f" {configured}: set it to {len(found)} if the topic was made so (a kafka: replay keeps the"
                " topic's partitions and offsets; to rebuild for another count, replay a file of the events)"
            )
        return found

    async def _listed(self) -> list[int]:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.settings.kafka_bootstrap, **self.settings.kafka_security()
        )
        await admin.start()
        try:
            if self.topic not in await admin.list_topics():  # describing a missing topic may create it
                raise SourceError(f"topic {self.topic!r} not found: check the name (kafka:TOPIC)")
            described = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        found = [p["partition"] for t in described if t.get("topic") == self.topic for p in t["partitions"]]
        if not found:
            raise SourceError(f"topic {self.topic!r} not found or without partitions: check the name")
        return sorted(found)


class CsvSource:
    """A CSV export of orders (see streams.replay.csv_orders), partitioned and numbered like a JSONL file."""

    def __init__(self, orders: Any, partitions: int) -> None:
        self.orders = orders
        self.partitions = partitions
        self.progress = Progress(0, orders.size, "B")

    async def chunks(self, topic: str, owned: Collection[int] | None = None) -> AsyncIterator[Chunk]:
        for chunk in assign(self.orders.keyed(), self.partitions, topic, owned):
            self.progress.done = self.orders.position
            yield chunk
