"""Rebuild state from a log into a fresh namespace, through the live worker's own code path.

`replay()` builds a :class:`streams.worker.loop.Worker` without a consumer, owns every partition of the target
namespace, and feeds it the source's records partition by partition, in log order, with the offsets the source
gives (see :mod:`streams.replay.sources`). Everything else is the worker's: decode, apply, the fenced Lua
commit, the due sweep. A customer is advanced by its own next event; the only sweep runs after the last batch
(never on the wall clock, never at a flush: a late row would then depend on --batch), so the same file gives
the same namespace, key for key, field for field. That sweep takes every partition to the end of the *whole*
log (or to `until`), not to its own watermark: otherwise a customer's final segments would depend on which
partition it hashes to, i.e. on the partition count (see `end_of_log` for a replay split across processes).

Transitions go nowhere unless `emit_topic` is given; dead letters go to a rejects JSONL file (line number,
partition, offset, stage, error, original line), never dropped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis

from segmentation import Definitions
from segmentation.instants import to_us
from streams.replay.output import Bar, Rejects
from streams.replay.output import ReplayError as ReplayError  # raised by replay(); callers import it here
from streams.replay.sources import Chunk, Progress
from streams.settings import Settings
from streams.store.connection import scan_slot
from streams.store.keys import KeySpace
from streams.store.namespaces import check_name
from streams.store.redis_store import RedisStateStore
from streams.store.writes import from_us
from streams.worker.batch import BatchResult, Record
from streams.worker.future_limit import FutureLimit
from streams.worker.loop import Worker

DEFAULT_BATCH = 20_000


class UntilTooEarly(ReplayError):
    """`until` is before an event of the log: advancing to it would move time backwards (exit code 2)."""


def check_until(until: datetime | None, watermarks: Collection[int | None]) -> None:
    """Refuse `until` once an applied event is later than it."""
    latest = max((w for w in watermarks if w is not None), default=None)
    if until is not None and latest is not None and latest > to_us(until):
        raise UntilTooEarly(
            f"--until {until.isoformat()} is before the log's event at {from_us(latest).isoformat()}"
        )


async def sweep_to(worker: Worker, clock_us: int) -> None:
    """Every owned partition's customers through their time-driven changes due at or before `clock_us`.

    The sweep's clock in replay mode is the partition's watermark in memory; raising it here (after the last
    batch: nothing else reads it) makes the sweep use the end of the log. The stored watermark is not
    touched (a sweep commits none). Each customer still moves to its own due instants only (`advance_all`),
    so the result depends on the clock, not on the partition the customer is in."""
    for owned in worker.owned.values():
        owned.watermark_us = max(owned.watermark_us or clock_us, clock_us)
    await worker.sweep(force=True)


class Source(Protocol):
    progress: Progress

    def chunks(self, topic: str, owned: Collection[int] | None = None) -> AsyncIterator[Chunk]: ...


@dataclass
class ReplaySummary:
    source: str
    namespace: str
    events: int = 0
    dead_letters: int = 0
    duplicates: int = 0  # events applied already, or covered by an erasure: skipped (no effect), counted
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
            f"  duplicates    {self.duplicates:>12,}  (applied already, or before an erasure: no effect)",
            f"  elapsed       {self.elapsed_s:>12.1f} s",
            f"  rate          {self.events_per_s:>12,.0f} events/s",
            f"  transitions   {sum(self.transitions.values()):>12,}"
            + (f"  -> topic {self.emitted_to}" if self.emitted_to else "  (not emitted)"),
        ]
        lines += [f"    {grid:<32}{n:>10,}" for grid, n in sorted(self.transitions.items())]
        lines += [f"  {k}: {v}" for k, v in sorted(self.extra.items())]
        return "\n".join(lines)


class ReplayWorker(Worker):
    """The worker, plus counting transitions per grid and sending dead letters to the rejects file."""

    def __init__(self, *args: Any, rejects: Rejects, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rejects = rejects
        self.by_grid: Counter[str] = Counter()
        self.duplicates = 0

    async def _publish(self, result: BatchResult) -> None:
        self.duplicates += result.duplicates
        for t in result.transitions:
            self.by_grid[t.grid] += 1
        if result.dead_letters:
            await self.rejects.add(result.dead_letters)
            result = dataclasses.replace(result, dead_letters=[])
        await super()._publish(result)


async def count_customers(client: aioredis.Redis, keys: KeySpace, partitions: int) -> int:
    total = 0
    for p in range(partitions):
        async for _ in scan_slot(client, keys.customer_pattern(p), keys.partition_meta(p)):
            total += 1
    return total


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
    until: datetime | None = None,
    end_of_log: Callable[[int | None], Awaitable[int | None]] | None = None,
    reject_future: datetime | None = None,
) -> ReplaySummary:
    """Feed the source through a Worker into `namespace` (prepared first: namespaces.prepare_namespace).

    `partitions`: only these (a share of a split replay, see streams.replay.split); `count=False` skips
    counting the namespace's customers at the end (a share would count the others' too). At the end every
    partition is swept to `until` (UntilTooEarly if an event is later) or else to the log's end: the latest
    event time of the owned partitions, or what `end_of_log` answers given it (a share learns the maximum
    over every share from the parent process). `reject_future`: an event dated more than
    SEGSTREAM_MAX_FUTURE_SKEW_S after its record's time is a dead letter, as a live worker decides
    (`streams.worker.future_limit`); a line of a file has no time and is held to this instant instead."""
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
    if reject_future is not None:
        future = FutureLimit(reject_future, timedelta(seconds=run.max_future_skew_s), "the replay's start")
        worker.future_limit = lambda: future
    owned = partitions if partitions is not None else list(range(run.topic_partitions))
    bar = Bar(source.progress, enabled=show_progress)
    started = time.monotonic()
    events = 0
    # The cyclic GC is off for the replay and runs once per drain instead. The hot path makes millions of
    # acyclic objects, and a batch in flight (~80k events at the default size) is live, so every automatic
    # collection rescanned it for nothing: ~10 % of the CPU even at Worker.run's raised thresholds. The
    # cycles that remain (asyncio tasks) live at most one drain window; dead letters hold no traceback.
    # Not after the final drain: a full collection then scanned every cached state (0.63 s, ~4 % of an
    # 87k-event import) just before the end; the caches are dropped at the end instead (freed by their
    # reference counts), so the GC re-enabled then finds little to scan.
    gc_was_enabled, retired = gc.isenabled(), False
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
            # them. The rejects file waits for every batch in flight (drain). No sweep runs before the
            # final one (`sweep_to`): a customer is advanced by its own next event, so a purchase dated
            # before its partition's watermark (a late row) is applied the same whatever --batch,
            # --processes or the partition count; swept at a watermark first, it would have been late.
            for p in sorted(pending):
                await worker.submit(p, pending[p])
            pending.clear()
            pending_count = 0
            flushes += 1
            if final or flushes % 8 == 0:
                await worker.drain()
                check_until(until, [o.watermark_us for o in worker.owned.values()])
                lost = set(owned) - set(worker.owned)
                if lost:
                    raise ReplayError(
                        f"fenced out of partitions {sorted(lost)}: another process claimed them"
                    )
                rejects.flush()
                if not final:  # the last window's cycles are left to the GC re-enabled at the end
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
        await _skipped(worker, getattr(source, "skipped", {}))
        end = max((o.watermark_us for o in worker.owned.values() if o.watermark_us is not None), default=None)
        if end_of_log is not None:
            end = await end_of_log(end)
        clock = to_us(until) if until is not None else end
        if clock is not None:
            await sweep_to(worker, clock)
            if set(owned) - set(worker.owned):
                raise ReplayError(
                    "fenced out of partitions during the final sweep: another process claimed them"
                )
        from streams.bootstrap import record_definitions

        await record_definitions(client, keys, definitions.version, run.topic_partitions)  # workers check
        await worker.retire()  # the replay is no running worker for `definitions apply`, `drop`, a replay
        retired = True
        for held in list(worker.owned.values()):  # no random claim id left: two replays are byte-identical
            await worker.store.release(held.claim)
            held.cache.clear()  # freed now by reference counts: the GC re-enabled below has not to scan them
        bar.update(events, final=True)
    finally:
        if not retired:  # failed: no running worker either (best effort, bounded: Redis may be down)
            with suppress(TimeoutError):
                await asyncio.wait_for(worker.retire(), 5.0)
        if gc_was_enabled:
            gc.enable()
        bar.close()  # a no-op after the final update
        rejects.close()
        if producer is not None:
            await producer.stop()
    elapsed = time.monotonic() - started
    return ReplaySummary(
        source=source_name,
        namespace=namespace,
        events=events,
        dead_letters=rejects.count,
        duplicates=worker.duplicates,
        customers=await count_customers(client, keys, run.topic_partitions) if count else 0,
        transitions=dict(sorted(worker.by_grid.items())),
        elapsed_s=round(elapsed, 3),
        events_per_s=round(events / elapsed if elapsed > 0 else 0.0, 1),
        rejects_file=str(rejects_path) if rejects.count and rejects_path else None,
        emitted_to=emit_topic,
    )


async def _skipped(worker: Worker, skipped: Mapping[int, int]) -> None:
    """A partition with records only before `--since` (a Kafka source's `skipped`) is committed as applied up
    to them: otherwise it would have no offset, and a worker continuing the namespace would apply them."""
    for p, last in sorted(skipped.items()):
        held = worker.owned.get(p)
        if held is not None and (held.offset is None or held.offset < last):
            await worker.store.commit(held.claim, last, None, [])
            held.offset = last


async def _ensure_topic(settings: Settings, topic: str) -> None:
    from streams.bootstrap import ensure_topics

    await ensure_topics(settings, [topic])
