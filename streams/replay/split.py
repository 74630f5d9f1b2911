"""A replay split across processes: each owns a share of the partitions, as workers of a consumer group do.

Why: one replay process is CPU-bound in Python (decode + the pure core + building the commit), while Redis
uses a fraction of a core (see benchmarks/bench_replay.py). Partitions are independent (own keys, own cache,
own offsets), so N processes each running :func:`streams.replay.rebuild.replay` on its own partitions give the
same namespace, key for key, as one process: each claims its partitions (its own fence tokens, so a process
that is fenced out stops with an error as a single replay does) and reads the whole source, keeping only its
partitions' records (a file's offsets are ranks among all its lines).

Each process writes its own rejects file; they are merged into one, in line order, at the end. Transitions
(`--emit`) are published by each process for its partitions, with the same ids.

The final sweep goes to the end of the whole log, which no process knows alone (a Kafka share reads only its
partitions): each sends its partitions' latest event time to the parent and waits; once every share has, the
parent answers the maximum to all, and each sweeps its partitions to it (as one process sweeps all of them).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from streams.replay.output import Bar, ReplayError
from streams.replay.rebuild import ReplaySummary, UntilTooEarly, count_customers
from streams.replay.sources import Progress
from streams.settings import Settings
from streams.store.keys import KeySpace


@dataclass(frozen=True)
class SourceSpec:
    """What a child process opens: a JSONL file, or a Kafka topic (from `since`). CSV imports are not
    split: the CSV reader writes its own rejects file, which N readers would overwrite."""

    path: Path | None = None
    topic: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class Share:
    """One child's job (picklable: a child is a fresh interpreter)."""

    settings: Settings
    definitions_file: str | None
    source: SourceSpec
    namespace: str
    partitions: tuple[int, ...]
    rejects_path: Path
    emit_topic: str | None
    batch_events: int
    until: datetime | None = None
    reject_future: datetime | None = None  # the parent's instant: every share holds files to the same


def shares(partitions: int, processes: int) -> list[tuple[int, ...]]:
    """Partitions dealt round-robin: [0, 2], [1, 3] for 4 partitions and 2 processes."""
    count = max(1, min(processes, partitions))
    return [tuple(range(k, partitions, count)) for k in range(count)]


ORPHANED = 70  # a share's exit status when its parent died first (`_end_with`)


def _end_with(parent: int) -> None:
    """Exit as soon as the parent replay is gone (SIGTERM, kill -9, a crash: it cannot always stop us). An
    orphan would go on writing the namespace, even while a rerun with --force drops and rebuilds it; killed
    between two commits, a share leaves what a killed replay leaves (the namespace marked unfinished)."""
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(ORPHANED)


def _run_share(share: Share, results: Connection, parent: int) -> None:
    """Child process body: replay the share and send back its figures (or the error)."""
    threading.Thread(target=_end_with, args=(parent,), name="parent-watch", daemon=True).start()
    try:
        results.send(("ok", asyncio.run(_replay_share(share, results))))
    except UntilTooEarly as exc:
        results.send(("until", str(exc)))
    except ReplayError as exc:
        results.send(("replay", str(exc)))
    except BaseException as exc:  # reported to the parent, which stops the others and raises
        results.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        results.close()


async def _replay_share(share: Share, parent: Connection) -> dict[str, Any]:
    from segmentation import Definitions
    from streams.bootstrap import load_definitions, redis_client
    from streams.replay.rebuild import Source, replay
    from streams.replay.sources import FileSource, KafkaSource

    settings = share.settings
    definitions = (
        Definitions.from_yaml(share.definitions_file)
        if share.definitions_file
        else load_definitions(settings)
    )
    source: Source
    file_source = None
    if share.source.path is not None:
        source = file_source = FileSource(share.source.path, settings.topic_partitions)
    else:
        assert share.source.topic is not None
        source = KafkaSource(share.source.topic, share.source.since, settings)
    client = redis_client(settings)

    async def end_of_log(mine: int | None) -> int | None:
        parent.send(("end", mine))
        answer: int | None = await asyncio.to_thread(parent.recv)
        return answer

    try:
        summary = await replay(
            settings,
            definitions,
            client,
            source,
            share.namespace,
            source_name=str(share.source.path or share.source.topic),
            rejects_path=share.rejects_path,
            emit_topic=share.emit_topic,
            batch_events=share.batch_events,
            partitions=list(share.partitions),
            show_progress=False,
            count=False,
            until=share.until,
            end_of_log=end_of_log,
            reject_future=share.reject_future,
        )
    finally:
        await client.aclose()
    return {
        "events": summary.events,
        "dead_letters": summary.dead_letters,
        "duplicates": summary.duplicates,
        "transitions": summary.transitions,
        "blank_lines": file_source.blank_lines if file_source is not None else 0,
    }


async def replay_split(
    settings: Settings,
    client: aioredis.Redis,
    source: SourceSpec,
    namespace: str,
    *,
    processes: int,
    definitions_file: str | None,
    rejects_path: Path,
    emit_topic: str | None = None,
    batch_events: int,
    show_progress: bool | None = None,
    until: datetime | None = None,
    reject_future: datetime | None = None,
) -> ReplaySummary:
    """`replay` with the partitions dealt to `processes` child processes (the namespace must be prepared)."""
    started = time.monotonic()
    parts = shares(settings.topic_partitions, processes)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited loop or sockets
    children: list[tuple[Any, Connection, Path]] = []
    for k, owned in enumerate(parts):
        part_rejects = rejects_path.with_name(f"{rejects_path.name}.part{k}")
        share = Share(
            settings,
            definitions_file,
            source,
            namespace,
            owned,
            part_rejects,
            emit_topic,
            batch_events,
            until,
            reject_future,
        )
        receive, send = context.Pipe(duplex=True)  # the child also receives the end of the whole log
        process = context.Process(target=_run_share, args=(share, send, os.getpid()), name=f"replay-{k}")
        process.start()
        send.close()
        children.append((process, receive, part_rejects))
    keys = KeySpace(settings.key_prefix, namespace, settings.events_topic)
    bar = Bar(Progress(0, None, "records"), enabled=show_progress)
    results: dict[int, dict[str, Any]] = {}
    ends: dict[int, int | None] = {}
    try:
        waiting = {receive: k for k, (_, receive, _) in enumerate(children)}
        while waiting:
            ready = await asyncio.to_thread(wait, list(waiting), 0.5)
            for conn in ready:
                assert isinstance(conn, Connection)
                k = waiting[conn]
                try:
                    status, payload = conn.recv()
                except EOFError:
                    status, payload = "error", f"exited with code {children[k][0].exitcode}"
                if status == "end":  # a share is done but for its final sweep: answer once all are
                    ends[k] = payload
                    if len(ends) == len(children):
                        end = max((e for e in ends.values() if e is not None), default=None)
                        for _, pipe, _ in children:
                            pipe.send(end)
                    continue
                del waiting[conn]
                if status == "until":
                    raise UntilTooEarly(payload)
                if status != "ok":
                    raise ReplayError(f"process {k} (partitions {list(parts[k])}): {payload}")
                results[k] = payload
            bar.update(await committed(client, keys, settings.topic_partitions))
    finally:
        for process, receive, _ in children:
            if process.is_alive():
                process.terminate()
            process.join()
            receive.close()
    events = sum(r["events"] for r in results.values())
    bar.update(events, final=True)
    dead = merge_rejects([path for _, _, path in children], rejects_path)
    transitions: Counter[str] = Counter()
    for r in results.values():
        transitions.update(r["transitions"])
    elapsed = time.monotonic() - started
    summary = ReplaySummary(
        source=str(source.path or f"kafka:{source.topic}"),
        namespace=namespace,
        events=events,
        dead_letters=dead,
        duplicates=sum(r["duplicates"] for r in results.values()),
        customers=await count_customers(client, keys, settings.topic_partitions),
        transitions=dict(sorted(transitions.items())),
        elapsed_s=round(elapsed, 3),
        events_per_s=round(events / elapsed if elapsed > 0 else 0.0, 1),
        rejects_file=str(rejects_path) if dead else None,
        emitted_to=emit_topic,
    )
    blank = max((r["blank_lines"] for r in results.values()), default=0)  # each child read the whole file
    summary.extra = {"processes": len(parts)} | ({"blank_lines": blank} if blank else {})
    return summary


async def committed(client: aioredis.Redis, keys: KeySpace, partitions: int) -> int:
    """Records the namespace's partitions account for so far (sum of stored offsets + 1): the progress."""
    async with client.pipeline(transaction=False) as pipe:
        for p in range(partitions):
            pipe.hget(keys.partition_meta(p), "offset")
        values = await pipe.execute()
    return sum(int(v) + 1 for v in values if v is not None)


def merge_rejects(parts: list[Path], target: Path) -> int:
    """The children's rejects files as one, in line order (then partition, offset); the parts are removed."""
    rows: list[tuple[tuple[int, int, int], bytes]] = []
    for part in parts:
        if not part.exists():
            continue
        for raw in part.read_bytes().splitlines():
            row = orjson.loads(raw)
            line = -1 if row["line"] is None else row["line"]
            rows.append(((line, row["partition"], row["offset"]), raw))
        part.unlink()
    if rows:
        rows.sort(key=lambda r: r[0])
        target.write_bytes(b"".join(raw + b"\n" for _, raw in rows))
    return len(rows)
