"""Redis server settings that decide what a customer costs in memory; checked when a worker or the API starts.

A customer hash (~60 short fields) is stored as a compact listpack only while every value fits
`hash-max-listpack-value`; the packed `state` (with the de-duplication window, 9 bytes an event id) and the
coded `history` are longer than the default 64 bytes, which silently doubles the hash's memory (hashtable
encoding). The local stack and docker-compose.yml set 4096; elsewhere the operator must (managed services
expose it as a parameter).
"""

from __future__ import annotations

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
