"""Shared pieces of the replay tests: run a replay in-process, dump a namespace key by key."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from segmentation import Definitions
from streams.replay.rebuild import ReplaySummary, Source, replay
from streams.replay.sources import FileSource
from streams.replay.split import SourceSpec, replay_split
from streams.settings import Settings
from streams.store.connection import async_client, sync_client
from streams.store.definitions_record import BORN
from streams.store.namespaces import prepare_namespace


async def replay_file(
    settings: Settings,
    path: Path,
    namespace: str,
    out: Path,
    emit: str | None = None,
    batch: int = 2000,
    definitions: Definitions | None = None,
    source: Source | None = None,
    until: datetime | None = None,
) -> ReplaySummary:
    client = async_client(settings.redis_url)
    try:
        await prepare_namespace(client, settings.key_prefix, namespace, force=False, into_active=True)
        return await replay(
            settings,
            definitions or Definitions.default(),
            client,
            source or FileSource(path, settings.topic_partitions),
            namespace,
            source_name=str(path),
            rejects_path=out / f"{namespace}.rejects.jsonl",
            emit_topic=emit,
            batch_events=batch,
            show_progress=False,
            until=until,
        )
    finally:
        await client.aclose()


async def replay_split_file(
    settings: Settings,
    path: Path,
    namespace: str,
    out: Path,
    processes: int,
    batch: int = 2000,
    topic: str | None = None,
    until: datetime | None = None,
) -> ReplaySummary:
    """`replay_file` split across `processes` child processes (packaged definitions); the Kafka `topic`
    instead of the file when given."""
    client = async_client(settings.redis_url)
    try:
        await prepare_namespace(client, settings.key_prefix, namespace, force=False, into_active=True)
        return await replay_split(
            settings,
            client,
            SourceSpec(topic=topic) if topic else SourceSpec(path=path),
            namespace,
            processes=processes,
            definitions_file=None,
            rejects_path=out / f"{namespace}.rejects.jsonl",
            batch_events=batch,
            show_progress=False,
            until=until,
        )
    finally:
        await client.aclose()


def dump_namespace(
    settings: Settings, namespace: str, skip: tuple[str, ...] = ("metrics", "definitions:log")
) -> dict[str, Any]:
    """Every key of the namespace (relative name) -> its full content, by type. `metrics` and
    `definitions:log` (wall-clock stamps, operational records and not state) are skipped by default, and the
    definitions record's `born` (a random token per build)."""
    client = sync_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    raw = sync_client(settings.redis_url)  # membership bitmaps are binary
    base = f"{settings.key_prefix}:{namespace}:"
    out: dict[str, Any] = {}
    try:
        for key in client.scan_iter(match=f"{base}*", count=1000):
            name = str(key)[len(base) :]
            if name in skip:
                continue
            kind = client.type(key)
            if kind == "hash" and name == "definitions":  # `born` names the build, not its state
                out[name] = {k: v for k, v in client.hgetall(key).items() if k != BORN}
            elif kind == "hash":
                out[name] = client.hgetall(key)
            elif kind == "zset":
                out[name] = client.zrange(key, 0, -1, withscores=True)
            elif kind == "set":
                out[name] = sorted(map(str, client.smembers(key)))
            elif kind == "string" and ":m:" in name:
                bits = membership_bits(raw, str(key))
                if bits is not None:
                    out[name] = bits
            elif kind == "string":
                out[name] = client.get(key)
            elif kind == "list":
                out[name] = client.lrange(key, 0, -1)
            elif kind == "stream":
                out[name] = list(client.xrange(key) or [])
            else:
                out[name] = kind
    finally:
        client.close()
        raw.close()
    return out


def membership_bits(raw: redis.Redis, key: str) -> bytes | None:
    """A membership bitmap by its set bits: trailing zero bytes (a bit set, then cleared, at the end) and an
    all-zero bitmap depend on the batching, not on the log, so they are left out (None: no member)."""
    value = raw.get(key)
    bits = value.rstrip(b"\0") if isinstance(value, bytes) else b""
    return bits or None


def customers_of(dump: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dump.items() if ":c:" in k}


def by_customer(dump: dict[str, Any]) -> dict[str, Any]:
    """Customer hashes (without the storage fields `_offset`, ...; with the history field) by customer id:
    what must not depend on the partition count, which changes the keys' hash tags and the offsets."""
    out: dict[str, Any] = {}
    for key, value in dump.items():
        if ":c:" in key:
            out["c:" + key.split(":c:", 1)[1]] = {k: v for k, v in value.items() if not k.startswith("_")}
    return out


def batch_independent(dump: dict[str, Any]) -> dict[str, Any]:
    """The dump without the one thing that depends on the commit schedule (batch size) rather than on the
    log: each partition's commit counter (`seq` in its meta hash)."""
    out: dict[str, Any] = {}
    for key, value in dump.items():
        if key.endswith(":meta") and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "seq"}
        out[key] = value
    return out
