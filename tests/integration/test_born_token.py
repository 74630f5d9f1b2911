"""Two first workers recording a new namespace at the same instant keep one build token, on the real Redis.

The token names the namespace's build in members and sync cursors: replaced a moment after a reader took it,
that reader's walk or sync was refused as "built again" (fourth review of 7 December 2026). The second
worker's read of the token is held (a delay at its await) until the first one has written its own.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any

from streams.store.connection import async_client
from streams.store.definitions_record import BORN, PARTITIONS, RedisDefinitionsRecord
from streams.store.keys import KeySpace
from tests.services import Services


def test_a_second_first_worker_keeps_the_first_one_s_token(services: Services, redis_prefix: str) -> None:
    prefix = redis_prefix.rstrip(":")
    key = KeySpace(prefix, "fresh", "events").definitions()

    async def race() -> tuple[Any, Any]:
        first, second = async_client(services.redis_url), async_client(services.redis_url)
        written = asyncio.Event()
        hget, evalsha = second.hget, second.evalsha

        async def wait() -> None:
            with suppress(TimeoutError):
                await asyncio.wait_for(written.wait(), 5)

        async def read_then_wait(*args: Any, **kwargs: Any) -> Any:  # what it read stays as it was read
            value = await hget(*args, **kwargs)
            await wait()
            return value

        async def wait_then_run(*args: Any, **kwargs: Any) -> Any:
            await wait()
            return await evalsha(*args, **kwargs)

        try:  # the second worker's first await is held, after its read, until the first one has written
            second.hget = read_then_wait  # type: ignore[method-assign]
            second.evalsha = wait_then_run  # type: ignore[method-assign]
            late = asyncio.create_task(
                RedisDefinitionsRecord(second, prefix, "events").record_partitions("fresh", 4)
            )
            await asyncio.sleep(0.05)  # the second one is waiting at its first await
            await RedisDefinitionsRecord(first, prefix, "events").record_partitions("fresh", 4)
            token = await first.hget(key, BORN)
            written.set()
            await late
            return token, await first.hmget(key, [BORN, PARTITIONS])
        finally:
            await first.aclose()
            await second.aclose()

    token, (kept, partitions) = asyncio.run(race())
    assert token is not None and (kept, partitions) == (token, b"4")
