"""Transient Redis and Kafka failures are waited out: the stream must never move past an unapplied event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    KafkaUnavailableError,
    NoBrokersAvailable,
)
from redis.exceptions import ClusterError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("segstream.worker")
T = TypeVar("T")
TRANSIENT: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterError,  # "TTL exhausted": refused (TRYAGAIN while its slot migrates) until redis-py gave up
    KafkaError,
    OSError,
    asyncio.TimeoutError,
)
"""What may be an outage; `transient` says which of them really are."""
_KAFKA_OUTAGE = (KafkaConnectionError, KafkaTimeoutError, KafkaUnavailableError, NoBrokersAvailable)


def transient(exc: BaseException) -> bool:
    """An outage to wait out. A Kafka error the broker says will not change on a retry (record too large,
    not authorised, corrupt record...) is not: retrying it forever would stall every partition unseen."""
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False)) or isinstance(exc, _KAFKA_OUTAGE)
    return isinstance(exc, TRANSIENT)


async def retry(
    action: Callable[[], Awaitable[T]], what: str, counted: Callable[[str], None], max_backoff_s: float
) -> T:
    """Run `action` until it succeeds, backing off exponentially; `counted(what)` is told of each retry."""
    delay = 0.05
    while True:
        try:
            return await action()
        except TRANSIENT as exc:
            if not transient(exc):
                raise
            counted(what)
            log.warning("%s failed (%s: %s); retrying in %.2fs", what, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
