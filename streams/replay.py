"""Rebuild state from a log into a fresh namespace, through the live worker's own code path.

`replay()` builds a :class:`streams.worker.Worker` without a consumer, owns every partition of the target
namespace, and feeds it the source's records partition by partition, in log order, with the offsets the
source gives (see :mod:`streams.sources`). Everything else is the worker's: decode, apply, the fenced Lua
commit, the due sweep. The clock is the partition watermark (`mode="replay"`), and the sweep runs after every
flush, on a schedule that depends only on the log (never on the wall clock), so the same file gives the same
namespace, key for key, field for field.

Transitions go nowhere unless `emit_topic` is given; dead letters go to a rejects JSONL file (line number,
partition, offset, stage, error, original line), never dropped.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
import time
from array import array
from collections import Counter
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
import redis.asyncio as aioredis

from segmentation import Definitions
from streams.batch import BatchResult, Record
from streams.deadletter import DeadLetter
from streams.keys import KeySpace
from streams.namespaces import NamespaceError, check_name, drop, is_empty
from streams.redis_store import RedisStateStore
from streams.settings import Settings
from streams.sources import Chunk, Progress
from streams.worker import Worker

DEFAULT_BATCH = 20_000


class ReplayError(Exception):
    """The replay cannot go on (fenced by another process, partition count mismatch, ...)."""


class Source(Protocol):
    progress: Progress

    def chunks(self, topic: str, owned: Collection[int] | None = None) -> AsyncIterator[Chunk]: ...


@dataclass
class ReplaySummary:
    source: str
    namespace: str
    events: int = 0
    dead_letters: int = 0
    customers: int = 0
    transitions: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    events_per_s: float = 0.0
    rejects_file: str | None = None
    emitted_to: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    def text(self) -> str:
        lines = [
            f"replay of {self.source} into namespace {self.namespace!r}",
            f"  events        {self.events:>12,}",
            f"  customers     {self.customers:>12,}",
            f"  dead letters  {self.dead_letters:>12,}"
            + (f"  -> {self.rejects_file}" if self.rejects_file else ""),
            f"  elapsed       {self.elapsed_s:>12.1f} s",
            f"  rate          {self.events_per_s:>12,.0f} events/s",
            f"  transitions   {sum(self.transitions.values()):>12,}"
            + (f"  -> topic {self.emitted_to}" if self.emitted_to else "  (not emitted)"),
        ]
        lines += [f"    {grid:<32}{n:>10,}" for grid, n in sorted(self.transitions.items())]
        lines += [f"  {k}: {v}" for k, v in sorted(self.extra.items())]
        return "\n".join(lines)


class LineIndex:
    """File line of each pending record, per partition: runs of consecutive offsets with their lines in an
    array (8 bytes per record; a dict keyed by (partition, offset) cost ~150 bytes and grew with the drain
    window: ~100 MiB at 640k records)."""

    def __init__(self) -> None:
        self._runs: dict[int, list[tuple[int, array[int]]]] = {}

    def extend(self, partition: int, first_offset: int, lines: array[int]) -> None:
        runs = self._runs.setdefault(partition, [])
        if runs and runs[-1][0] + len(runs[-1][1]) == first_offset:
            runs[-1][1].extend(lines)
        else:
            runs.append((first_offset, array("q", lines)))

    def get(self, partition: int, offset: int) -> int | None:
        for first, lines in self._runs.get(partition, ()):
            if 0 <= offset - first < len(lines):
                return lines[offset - first]
        return None

    def clear(self) -> None:
        self._runs.clear()


class Rejects:
    """Dead letters as JSON lines, in line order within each flush; knows the lines of the pending records.

    A dead letter is rendered to its row as soon as it arrives (see `forget_tracebacks` for why it must not
    be kept)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self._file: IO[bytes] | None = None
        self._pending: list[tuple[int, int, int, bytes]] = []  # (line or -1, partition, offset, row)
        self.lines = LineIndex()

    async def add(self, dead: list[DeadLetter]) -> None:
        for d in dead:
            line = self.lines.get(d.partition, d.offset)
            row = {
                "line": line,
                "partition": d.partition,
                "offset": d.offset,
                "stage": d.stage,
                "error_class": f"{type(d.error).__module__}.{type(d.error).__qualname__}",
                "error": str(d.error)[:2000],
                "value": None if d.value is None else d.value.decode("utf-8", "replace"),
            }
            self._pending.append((-1 if line is None else line, d.partition, d.offset, orjson.dumps(row)))

    def flush(self) -> None:
        self.lines.clear()
        if not self._pending:
            return
        if self._file is None:
            if self.path is None:
                raise ReplayError("dead letters but no rejects file: refusing to drop them")
            self._file = self.path.open("wb")
        self._pending.sort(key=lambda r: (r[0], r[1], r[2]))
        self._file.write(b"".join(r[3] + b"\n" for r in self._pending))
        self.count += len(self._pending)
        self._pending.clear()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def forget_tracebacks(dead: list[DeadLetter]) -> None:
    """Drop the tracebacks of the dead letters' exceptions (and of their causes and contexts).

    A traceback holds the frame that raised, whose `f_back` chain reaches `Worker.submit`'s frame, whose
    locals hold the dead letters, hence the exception: a reference cycle through the whole batch (records,
    events, states, writes), freed only by a full cyclic collection. With the raised GC thresholds that
    pinned ~6 KB per event until the next drain (~450 MiB of RSS for 64k events in the window) and made each
    drain's gc.collect scan it all (~0.3 s). Only the exception's class and message are written out."""
    for d in dead:
        chain: list[BaseException | None] = [d.error]
        seen: set[int] = set()
        while chain:
            error = chain.pop()
            if error is not None and id(error) not in seen:
                seen.add(id(error))
                error.__traceback__ = None
                chain += (error.__cause__, error.__context__)


class ReplayWorker(Worker):
    """The worker, plus counting transitions per grid and sending dead letters to the rejects file."""

    def __init__(self, *args: Any, rejects: Rejects, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rejects = rejects
        self.by_grid: Counter[str] = Counter()

    async def _publish(self, result: BatchResult) -> None:
        for t in result.transitions:
            self.by_grid[t.grid] += 1
        if result.dead_letters:
            forget_tracebacks(result.dead_letters)
            await self.rejects.add(result.dead_letters)
            result = dataclasses.replace(result, dead_letters=[])
        await super()._publish(result)


class Bar:
    """A one-line progress bar on stderr with rate and ETA; silent when stderr is not a terminal."""

    def __init__(
        self, progress: Progress, stream: IO[str] | None = None, enabled: bool | None = None
    ) -> None:
        self.progress = progress
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, events: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 0.25):
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        rate = events / elapsed
        p = self.progress
        text = f"\r{events:>12,} events  {rate:>9,.0f} ev/s  {elapsed:6.0f}s"
        if p.total:
            share = min(p.done / p.total, 1.0)
            eta = elapsed * (1 - share) / share if share > 0 else 0.0
            filled = int(share * 30)
            text += f"  [{'#' * filled}{'.' * (30 - filled)}] {share:6.1%}  ETA {eta:5.0f}s"
        self.stream.write(text + ("\n" if final else ""))
        self.stream.flush()


async def count_customers(client: aioredis.Redis, keys: KeySpace, partitions: int) -> int:
    total = 0
    for p in range(partitions):
        async for _ in client.scan_iter(match=keys.customer_pattern(p), count=1000):
            total += 1
    return total


async def prepare_namespace(client: aioredis.Redis, prefix: str, namespace: str, force: bool) -> None:
    """Refuse a namespace that holds keys, unless forced (then it is dropped first; never the active one)."""
    check_name(namespace)
    if await is_empty(client, prefix, namespace):
        return
    if not force:
        raise NamespaceError(f"namespace {namespace!r} is not empty: choose another name or pass --force")
    await drop(client, prefix, namespace)


async def replay(
    settings: Settings,
    definitions: Definitions,
    client: aioredis.Redis,
    source: Source,
    namespace: str,
    *,
    source_name: str,
    rejects_path: Path | None,
    emit_topic: str | None = None,
    batch_events: int = DEFAULT_BATCH,
    partitions: list[int] | None = None,
    show_progress: bool | None = None,
    count: bool = True,
) -> ReplaySummary:
    """Feed the source through a Worker into `namespace` (which must be prepared: see prepare_namespace).

    `partitions`: only these (a share of a split replay, see streams.replay_split); `count=False` skips
    counting the namespace's customers at the end (a share would count the others' too)."""
    check_name(namespace)
    run = settings.model_copy(
        update={
            "namespace": namespace,
            "mode": "replay",
            "transitions_topic": emit_topic or settings.transitions_topic,
        }
    )
    keys = KeySpace(run.key_prefix, namespace, run.events_topic)
    store = RedisStateStore(client, keys)
    rejects = Rejects(rejects_path)
    producer = None
    if emit_topic is not None:
        from streams.bootstrap import producer as make_producer

        await _ensure_topic(run, emit_topic)
        producer = make_producer(run)
        await producer.start()
    worker = ReplayWorker(run, definitions, store, producer, None, rejects=rejects)
    owned = partitions if partitions is not None else list(range(run.topic_partitions))
    bar = Bar(source.progress, enabled=show_progress)
    started = time.monotonic()
    events = 0
    # The cyclic GC is off for the replay and runs once per drain instead. The hot path makes millions of
    # acyclic objects, and a batch in flight (~80k events at the default size) is live, so every automatic
    # collection rescanned it for nothing: ~10 % of the CPU even at Worker.run's raised thresholds. The
    # cycles that remain (asyncio tasks, dead letters until forget_tracebacks) live at most one drain window.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for p in owned:
            await worker.own(p)
        pending: dict[int, list[Record]] = {}
        pending_count = 0

        flushes = 0

        async def flush(final: bool = False) -> None:
            nonlocal pending_count, flushes
            for p in sorted(pending):  # checked first: submit() ignores a partition it does not own
                if p not in worker.owned:
                    raise ReplayError(
                        f"partition {p} is not owned: the source has more partitions than"
                        f" SEGSTREAM_TOPIC_PARTITIONS={run.topic_partitions}, or it was fenced"
                    )
            # Partitions are independent (own keys, own cache); submit() returns once a batch is applied in
            # memory and its publish + commit run in the background, so the next chunk's CPU work overlaps
            # them. Sweeping and the rejects file wait for every batch in flight (drain). When the sweep runs
            # does not change the result: each customer is advanced to its own due instants.
            for p in sorted(pending):
                await worker.submit(p, pending[p])
            pending.clear()
            pending_count = 0
            flushes += 1
            if final or flushes % 8 == 0:
                await worker.drain()
                await worker.sweep(force=True)
                lost = set(owned) - set(worker.owned)
                if lost:
                    raise ReplayError(
                        f"fenced out of partitions {sorted(lost)}: another process claimed them"
                    )
                rejects.flush()
                gc.collect()  # the only collections of the replay (see above)

        limit = batch_events * max(1, len(owned))
        async for chunk in source.chunks(run.events_topic, None if partitions is None else set(owned)):
            for p, records in chunk.records.items():
                pending.setdefault(p, []).extend(records)
                lines = chunk.lines.get(p)
                if lines:
                    rejects.lines.extend(p, records[0].offset, lines)
            pending_count += chunk.size
            events += chunk.size
            if pending_count >= limit:
                await flush()
                bar.update(events)
        await flush(final=True)
        bar.update(events, final=True)
    finally:
        if gc_was_enabled:
            gc.enable()
        rejects.close()
        if producer is not None:
            await producer.stop()
    elapsed = time.monotonic() - started
    return ReplaySummary(
        source=source_name,
        namespace=namespace,
        events=events,
        dead_letters=rejects.count,
        customers=await count_customers(client, keys, run.topic_partitions) if count else 0,
        transitions=dict(sorted(worker.by_grid.items())),
        elapsed_s=round(elapsed, 3),
        events_per_s=round(events / elapsed if elapsed > 0 else 0.0, 1),
        rejects_file=str(rejects_path) if rejects.count and rejects_path else None,
        emitted_to=emit_topic,
    )


async def _ensure_topic(settings: Settings, topic: str) -> None:
    import contextlib

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security())
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(topic, settings.topic_partitions, settings.topic_replication)]
                )
    finally:
        await admin.close()
