"""Namespaces: every key lives under <prefix>:<namespace>:..., so a replay can build a fresh namespace
while readers and the worker keep using the active one, then switch atomically.

The active namespace is one string key, `<prefix>:namespace:active` (absent: `main`); promoting is one SET,
atomic for every reader that looks it up afterwards. A worker without SEGSTREAM_NAMESPACE reads it every
second and follows a promote (streams/worker/namespace_follow.py). Listing and dropping walk the keys with
SCAN (never KEYS) and delete with UNLINK in batches, so a large namespace never blocks Redis.

`promote` racing a `drop` or a replay of the same namespace: each writes its own key first, then looks at the
other's (a drop or a replay sets the namespace's `building` mark, then reads the pointer; a promote sets the
pointer, then reads the mark and the keys, and puts the pointer back if it finds either wrong). Whatever the
interleaving, one of the two sees the other: an emptied or half-rebuilt namespace is never left active."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from streams.store.keys import KeySpace, building_key, lease_key
from streams.store.namespace_marks import accept
from streams.store.replies import text as _text

DEFAULT = "main"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_RESERVED = frozenset({"namespace"})  # `<prefix>:namespace:active` is the pointer, not a namespace
_BATCH = 500
_DROP_WALKS = 5  # walks of every primary a drop on a Redis Cluster makes at most (see `drop`)


class NamespaceError(Exception):
    """A namespace name is unusable (exit code 2: bad input)."""

    exit_code = 2


class NamespaceRefused(NamespaceError):
    """A guard refused the operation (unknown, active, empty or non-empty namespace): exit code 3."""

    exit_code = 3


def pointer_key(prefix: str) -> str:
    """The one key outside any namespace: the name of the active namespace (absent means `main`)."""
    return f"{prefix}:namespace:active"


async def active_namespace(client: aioredis.Redis, prefix: str) -> str:
    value = await client.get(pointer_key(prefix))
    if value is None:
        return DEFAULT
    return value.decode() if isinstance(value, bytes) else str(value)


def check_name(name: str) -> str:
    """Namespace names: 1-64 of A-Z a-z 0-9 _ . - (no ':' and no glob characters), not `namespace`."""
    if not _NAME.fullmatch(name) or name in _RESERVED:
        raise NamespaceError(
            f"invalid namespace name {name!r}: use 1-64 characters among A-Z a-z 0-9 _ . - (not 'namespace')"
        )
    return name


def glob_escape(text: str) -> str:
    """`text` matched literally inside a SCAN MATCH pattern (a prefix may hold `*`, `?`, `[`)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


async def namespace_keys(client: aioredis.Redis, prefix: str, name: str) -> AsyncIterator[str]:
    """Every key of the namespace (SCAN; a key may be seen twice if Redis rehashes meanwhile)."""
    match = f"{glob_escape(prefix)}:{glob_escape(check_name(name))}:*"
    async for key in client.scan_iter(match=match, count=1000):
        yield _text(key)


async def is_empty(client: aioredis.Redis, prefix: str, name: str) -> bool:
    async for _ in namespace_keys(client, prefix, name):
        return False
    return True


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    active: bool
    keys: int
    customers: int
    memory_bytes: int | None  # None when not measured


async def list_namespaces(
    client: aioredis.Redis, prefix: str, with_memory: bool = True
) -> list[NamespaceInfo]:
    """Every namespace under the prefix with its key count, customer count and memory (MEMORY USAGE)."""
    active = await active_namespace(client, prefix)
    start = len(prefix) + 1
    keys: dict[str, int] = {}
    customers: dict[str, int] = {}
    memory: dict[str, int] = {}
    pending: list[tuple[str, str]] = []

    async def measure() -> None:
        if not pending:
            return
        async with client.pipeline(transaction=False) as pipe:
            for _, key in pending:
                pipe.memory_usage(key, samples=0)
            sizes = await pipe.execute()
        for (name, _), size in zip(pending, sizes, strict=True):
            memory[name] = memory.get(name, 0) + int(size or 0)
        pending.clear()

    async for raw in client.scan_iter(match=f"{glob_escape(prefix)}:*", count=1000):
        key = _text(raw)
        name = key[start:].split(":", 1)[0]
        if key == pointer_key(prefix) or not _NAME.fullmatch(name) or name in _RESERVED:
            continue
        keys[name] = keys.get(name, 0) + 1
        if "}:c:" in key:
            customers[name] = customers.get(name, 0) + 1
        if with_memory:
            pending.append((name, key))
            if len(pending) >= _BATCH:
                await measure()
    await measure()
    keys.setdefault(active, 0)
    size = memory.get if with_memory else lambda name, default: None
    return [NamespaceInfo(n, n == active, keys[n], customers.get(n, 0), size(n, 0)) for n in sorted(keys)]


async def require_known(client: aioredis.Redis, prefix: str, name: str, create_hint: str = "") -> None:
    """Refuse (NamespaceRefused, exit code 3) a namespace that is neither active nor holding keys: most
    likely a typo, which would otherwise "drop 0 keys" or quietly create a namespace nobody reads."""
    check_name(name)
    if name == await active_namespace(client, prefix) or not await is_empty(client, prefix, name):
        return
    raise NamespaceRefused(f"unknown namespace {name!r} (known: {await _known(client, prefix)}){create_hint}")


async def _known(client: aioredis.Redis, prefix: str) -> str:
    """The namespaces for an error message: `main (active), spring`."""
    infos = await list_namespaces(client, prefix, with_memory=False)
    return ", ".join(info.name + (" (active)" if info.active else "") for info in infos)


async def hold(
    client: aioredis.Redis, prefix: str, name: str, note: bytes, refusal: str
) -> bytes | str | None:
    """Mark `name` as being rewritten (`promote` refuses it from now on), then refuse (NamespaceRefused with
    `refusal`, the mark as it was) if it is the active one; returns the mark it replaced."""
    key = building_key(prefix, name)
    if name == await active_namespace(client, prefix):  # before, too: no mark for readers to see
        raise NamespaceRefused(refusal)
    previous: bytes | str | None = await client.set(key, note, get=True)  # type: ignore[assignment]
    if name == await active_namespace(client, prefix):
        await (client.delete(key) if previous is None else client.set(key, previous))
        raise NamespaceRefused(refusal)
    return previous


# The pointer (the mark's stamp) put back by a promote refused after its SET, unless another changed it since
_PUT_BACK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
end
"""


async def promote(
    client: aioredis.Redis, prefix: str, name: str, require_keys: bool = True, require_complete: bool = True
) -> str | None:
    """Make `name` the active namespace (one SET: atomic for readers); returns the previous one. Refused
    while a replay builds it, or after one that stopped before its end (`KeySpace.building`): readers would
    see part of the log, unswept."""
    check_name(name)
    if require_keys and await is_empty(client, prefix, name):
        raise NamespaceRefused(
            f"namespace {name!r} has no keys: nothing to promote (known: {await _known(client, prefix)});"
            " to promote it anyway, pass --allow-empty"
        )
    seen = await _complete(client, prefix, name, require_complete)
    stamped = None if require_complete else await accept(client, prefix, name, seen)  # (namespace_marks)
    previous = await client.set(pointer_key(prefix), name, get=True)
    try:  # looked at again once the pointer is set: a drop or replay that began meanwhile (module docstring)
        await _complete(client, prefix, name, require_complete)
        if require_keys and await is_empty(client, prefix, name):
            raise NamespaceRefused(f"namespace {name!r} was dropped while promoted: nothing to promote")
    except NamespaceRefused:
        put_back = client.register_script(_PUT_BACK)
        await put_back(keys=[pointer_key(prefix)], args=[name, previous or b""])
        if stamped is not None:  # unstamped again, unless a replay marked it since
            await put_back(keys=[building_key(prefix, name)], args=[stamped, seen or b""])
        raise
    return None if previous is None else _text(previous)  # type: ignore[arg-type]


async def _complete(client: aioredis.Redis, prefix: str, name: str, required: bool) -> bytes | str | None:
    """The mark seen; refused if a replay or drop rewrites the namespace now (its lease), `--allow-incomplete`
    or not: its workers would be refused (`namespace_writers.refuse_rewritten`); if `required`, marked too."""
    holder = await client.get(lease_key(prefix, name))
    if holder is not None:
        raise NamespaceRefused(f"namespace {name!r} is being rewritten now ({_text(holder)}): wait for it")
    building = await client.get(building_key(prefix, name))
    if required and building is not None:
        raise NamespaceRefused(
            f"namespace {name!r} is being built or dropped, or its replay stopped before the end"
            f" ({_text(building)}): wait for it, or replay again with --force; to promote it as it is,"
            " pass --allow-incomplete"
        )
    return building


async def drop(client: aioredis.Redis, prefix: str, name: str, building: bytes | None = None) -> int:
    """Delete every key of an inactive namespace (SCAN + UNLINK in batches); returns the keys removed.
    `building`: a replay's mark, left on the namespace it is about to rebuild (else the mark goes last)."""
    check_name(name)
    mark = building_key(prefix, name)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    note = building or orjson.dumps({"drop": name, "started": started})
    refusal = f"namespace {name!r} is the active one: promote another before dropping it"
    removed = 0 if await hold(client, prefix, name, note, refusal) is None else 1
    removed += int(await client.unlink(KeySpace(prefix, name, "").definitions()))  # first: walks stop
    batch: list[str] = []

    async def unlink() -> int:
        # one UNLINK; redis-py's cluster client splits it by slot (keys of many partitions) and sums
        done = int(await client.unlink(*batch))
        batch.clear()
        return done

    # On a Redis Cluster the primaries are scanned one after the other, and a key whose slot moves from a
    # node not scanned yet to one already scanned is missed: walk again until a walk finds nothing (a moved
    # key is found by the next walk unless it moves again). A single server walks once.
    for _ in range(_DROP_WALKS if isinstance(client, AsyncRedisCluster) else 1):
        found = 0
        async for key in namespace_keys(client, prefix, name):
            if key == mark:
                continue
            found += 1
            batch.append(key)
            if len(batch) >= _BATCH:
                removed += await unlink()
        if batch:
            removed += await unlink()
        if not found:
            break
    else:
        if isinstance(client, AsyncRedisCluster):  # the mark stays: `promote` refuses what is left
            raise NamespaceRefused(
                f"namespace {name!r}: keys were still found after {_DROP_WALKS} walks of every primary"
                f" ({removed} removed): is something still writing it? Run the drop again"
            )
    if building is None:
        await client.delete(mark)
    return removed


async def prepare_namespace(
    client: aioredis.Redis,
    prefix: str,
    namespace: str,
    force: bool,
    building: bytes | None = None,
    into_active: bool = False,
) -> None:
    """Refuse a namespace that holds keys, unless forced (then it is dropped first), and the active one even
    empty: readers and the workers following `promote` would read it half built while the replay runs.
    `building`: the replay's mark (`promote` refuses the namespace while it is there), set before the
    active namespace is looked up: a `promote` racing this one cannot succeed (streams.store.namespaces).
    `into_active` (`replay --into-active`): an *empty* active namespace is built in place, for a first import
    on a fresh install that nothing reads yet; one holding keys is still refused, forced or not."""
    check_name(namespace)
    refusal = (
        f"namespace {namespace!r} is the active one: readers and workers would read it while the replay"
        " builds it; replay into another namespace, then promote it"
    )
    empty = await is_empty(client, prefix, namespace)
    if namespace == await active_namespace(client, prefix):
        if not (into_active and empty):
            raise NamespaceRefused(refusal + ("" if empty else " (--into-active builds only an empty one)"))
        if building is not None:
            previous: bytes | str | None = await client.set(  # type: ignore[assignment]
                building_key(prefix, namespace), building, get=True
            )
            await _refuse_another(client, prefix, namespace, building, previous, force)
        return
    if not empty and not force:
        mark = await client.get(building_key(prefix, namespace))  # a key of the namespace too
        why = "" if mark is None else f" (marked as being built: {_text(mark)}; {_MARKED})"
        raise NamespaceRefused(f"namespace {namespace!r} is not empty{why}: choose another name or --force")
    if building is not None:
        previous = await hold(client, prefix, namespace, building, refusal)
        await _refuse_another(client, prefix, namespace, building, previous, force)
    if not empty:
        await drop(client, prefix, namespace, building)


async def _refuse_another(
    client: aioredis.Redis, prefix: str, name: str, ours: bytes, previous: bytes | str | None, force: bool
) -> None:
    """Unforced, refuse a namespace whose mark another replay set after we found the namespace empty (the
    mark is a key of it: the check before catches it otherwise), putting their mark back. Two replays at once
    would fence each other out of partitions and the one left would resume after the offsets the other
    committed, in silence, even of another file."""
    if previous is None or force:
        return
    # theirs again, unless a later one replaced ours
    await client.register_script(_PUT_BACK)(keys=[building_key(prefix, name)], args=[ours, previous])
    raise NamespaceRefused(
        f"namespace {name!r} was marked as being built meanwhile ({_text(previous)}; {_MARKED}): wait for"
        " it, or pass --force once it is gone"
    )


_MARKED = "another replay is building it, or one stopped before its end"
