"""Redis server settings that decide what a customer costs in memory; checked when a worker or the API starts.

A customer hash (~60 short fields) is stored as a compact listpack only while every value fits
`hash-max-listpack-value`; the packed `state` (with the de-duplication window, 9 bytes an event id) and the
coded `history` are longer than the default 64 bytes, which silently doubles the hash's memory (hashtable
encoding). The local stack and docker-compose.yml set 4096; elsewhere the operator must (managed services
expose it as a parameter).
"""

from __future__ import annotations

import logging
from typing import Final

import redis
import redis.asyncio as aioredis

LISTPACK_VALUE: Final = 4096  # > 64 event ids of ~40 characters (UUIDs) as JSON, so hashes stay listpacks


async def memory_advice(client: aioredis.Redis) -> str | None:
    """A warning when the server's setting makes customer hashes ~2x larger; None when fine or unknowable."""
    try:
        got = await client.config_get("hash-max-listpack-value")
    except redis.ResponseError:  # CONFIG disabled (managed Redis, ACLs): nothing we can check
        return None
    try:
        current = int(got.get("hash-max-listpack-value") or "")  # redis-py decodes CONFIG GET answers
    except ValueError:  # an unexpected answer: say nothing rather than guess
        return None
    if current >= LISTPACK_VALUE:
        return None
    return (
        f"Redis hash-max-listpack-value is {current}: customer hashes will use the hashtable encoding "
        f"(about twice the memory). Set it to {LISTPACK_VALUE} (redis.conf, or "
        f"CONFIG SET hash-max-listpack-value {LISTPACK_VALUE}); see README 'Redis memory'."
    )


EVICTING: Final = ("allkeys-lru", "allkeys-lfu", "allkeys-random")
"""Policies under which Redis deletes any key when full. segstream sets no TTL, so the volatile-* policies
never pick its keys (at maxmemory they refuse writes like noeviction, which the worker waits out)."""


class EvictingRedis(RuntimeError):
    """Redis may delete keys when full: a customer's hash deleted is that customer's events lost without a
    word (the next event starts a new customer), a partition's meta deleted loses its applied offset and
    fence. Refused before anything is written; a server setting, so exit 2."""

    exit_code = 2


async def server_info(client: aioredis.Redis) -> list[dict[str, object]]:
    """INFO (memory and stats sections) of every primary: one dict per node; none where INFO is refused
    (an ACL user without +info: docs/security.md)."""
    try:
        if isinstance(client, aioredis.RedisCluster):
            replies = await client.info(target_nodes=aioredis.RedisCluster.PRIMARIES)
        else:
            replies = await client.info()
    except redis.ResponseError as exc:
        logging.getLogger("segstream").warning(
            "cannot read Redis's maxmemory-policy (INFO refused: %s): make sure it is noeviction", exc
        )
        return []
    if all(isinstance(v, dict) for v in replies.values()):  # several nodes: node name -> its INFO
        return list(replies.values())
    return [replies]


def eviction_warnings(infos: list[dict[str, object]]) -> list[str]:
    """What an evicting policy, and keys already evicted, mean for the stored states (doctor's warnings)."""
    warnings = []
    policies = sorted({str(i.get("maxmemory_policy")) for i in infos} & set(EVICTING))
    if policies:
        warnings.append(
            f"Redis maxmemory-policy is {', '.join(policies)}: when full it deletes any key, a customer's "
            "state or a partition's offset included (events silently lost); set it to noeviction "
            "(redis.conf, CONFIG SET maxmemory-policy noeviction, or the service's parameter), and a "
            "full Redis then makes the worker wait for memory (README 'Redis memory')"
        )
    evicted = sum(int(str(i.get("evicted_keys") or 0)) for i in infos)
    if evicted:
        warnings.append(
            f"Redis has evicted {evicted} keys since it started: if any was segstream's, its customers' "
            "events are lost; rebuild with `segstream replay` (docs/replay.md)"
        )
    return warnings


async def refuse_eviction(client: aioredis.Redis) -> None:
    """Raise EvictingRedis when the server's policy deletes keys when full (before a worker or a replay
    writes anything)."""
    infos = await server_info(client)
    policies = sorted({str(i.get("maxmemory_policy")) for i in infos} & set(EVICTING))
    if policies:
        raise EvictingRedis(eviction_warnings(infos)[0])
