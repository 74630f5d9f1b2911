"""What a reader checks of a namespace before it answers from it, in one round trip: the partition count it
was built for, every partition's counter format, and which build of the namespace it is."""

from __future__ import annotations

import redis.asyncio as aioredis

from streams.store.definitions_record import (
    BORN,
    PARTITIONS,
    VERSION,
    PartitionCountError,
    partition_count_conflict,
)
from streams.store.definitions_record import recorded_partitions as _count
from streams.store.keys import KeySpace, building_key
from streams.store.replies import text
from streams.store.weeks import FORMAT_FIELD, check_format


async def check_readable(client: aioredis.Redis, keys: KeySpace, partitions: int) -> tuple[str, str]:
    """Raise PartitionCountError or StoredFormatError (both 409, exit 3) unless the namespace can be read
    with `partitions`; return its build (`build_of`: what a cursor names) and standing (`standing_of`: what a
    walk that keeps the namespace checks)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.definitions(), [VERSION, PARTITIONS, BORN])
        pipe.exists(building_key(keys.prefix, keys.namespace))
        for p in range(partitions):
            pipe.hmget(keys.partition_meta(p), ["offset", FORMAT_FIELD])
        (version, recorded, born), building, *metas = await pipe.execute()
    conflict = partition_count_conflict(keys.namespace, _count(recorded), partitions)
    if conflict is not None:
        raise PartitionCountError(conflict)
    for offset, kept in metas:
        check_format(keys.namespace, offset, kept)
    return build_of(keys.namespace, born), standing_of(keys.namespace, version, recorded, born, building)


async def current_standing(client: aioredis.Redis, keys: KeySpace) -> str:
    """The namespace's standing now (`standing_of`)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.definitions(), [VERSION, PARTITIONS, BORN])
        pipe.exists(building_key(keys.prefix, keys.namespace))
        (version, recorded, born), building = await pipe.execute()
    return standing_of(keys.namespace, version, recorded, born, building)


def build_of(namespace: str, born: object) -> str:
    """The name and BORN token of a build (a namespace of an earlier release has no token: its name)."""
    token = text(born) if isinstance(born, (bytes, str)) else ""
    return f"{namespace}\x00{token}"


def standing_of(namespace: str, version: object, recorded: object, born: object, building: object) -> str:
    """Its build, whether its definitions record exists and whether it is marked as being rewritten: a walk
    that keeps the namespace (`iter_members`, a full export) stops when any of them changed since it began,
    a drop (which marks it, then deletes its record first) or a rebuild; a namespace never recorded (no
    worker or replay has finished on it yet) stays walkable, its standing unchanged."""
    record = "recorded" if version is not None or recorded is not None else "unrecorded"
    return f"{build_of(namespace, born)}\x00{record}" + ("\x00marked" if building else "")


def first_recorded(before: str, now: str) -> bool:
    """Whether the only change from standing `before` to `now` is the namespace's first record (a worker or
    replay that began writing it: its build token set), not a drop or a rebuild."""
    was, is_ = before.split("\x00"), now.split("\x00")
    return was[1:] == ["", "unrecorded"] and len(is_) == 3 and is_[0] == was[0] and is_[2] == "recorded"
