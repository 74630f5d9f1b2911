"""Transient Redis and Kafka failures are waited out: the stream must never move past an unapplied event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("segstream.worker")
T = TypeVar("T")
TRANSIENT: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    KafkaError,
    OSError,
    asyncio.TimeoutError,
)


async def retry(
    action: Callable[[], Awaitable[T]], what: str, counted: Callable[[str], None], max_backoff_s: float
) -> T:
    """Run `action` until it succeeds, backing off exponentially; `counted(what)` is told of each retry."""
    delay = 0.05
    while True:
        try:
            return await action()
        except TRANSIENT as exc:
            counted(what)
            log.warning("%s failed (%s: %s); retrying in %.2fs", what, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
