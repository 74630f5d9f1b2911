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


async def check_readable(client: aioredis.Redis, keys: KeySpace, partitions: int) -> str:
    """Raise PartitionCountError or StoredFormatError (both 409, exit 3) unless the namespace can be read
    with `partitions`; return its build (`build_of`)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.definitions(), [PARTITIONS, BORN])
        pipe.exists(building_key(keys.prefix, keys.namespace))
        for p in range(partitions):
            pipe.hmget(keys.partition_meta(p), ["offset", FORMAT_FIELD])
        (recorded, born), building, *metas = await pipe.execute()
    conflict = partition_count_conflict(keys.namespace, _count(recorded), partitions)
    if conflict is not None:
        raise PartitionCountError(conflict)
    for offset, kept in metas:
        check_format(keys.namespace, offset, kept)
    return build_of(keys.namespace, born, bool(building))


async def current_build(client: aioredis.Redis, keys: KeySpace) -> str | None:
    """The namespace's build now (`build_of`), None once it is dropped (`drop` deletes its definitions
    record first). A `building` mark set since a walk began (a drop, a replay about to rebuild it) changes
    the build too."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.definitions(), [VERSION, PARTITIONS, BORN])
        pipe.exists(building_key(keys.prefix, keys.namespace))
        (version, recorded, born), building = await pipe.execute()
    if version is None and recorded is None:
        return None
    return build_of(keys.namespace, born, bool(building))


def build_of(namespace: str, born: object, building: bool = False) -> str:
    """The name and BORN token of a build (a namespace of an earlier release has no token: its name), and
    whether it is marked as being rewritten (`namespaces.hold`)."""
    token = text(born) if isinstance(born, (bytes, str)) else ""
    return f"{namespace}\x00{token}" + ("\x00building" if building else "")
