"""Transient Redis and Kafka failures are waited out: the stream must never move past an unapplied event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    KafkaUnavailableError,
    NoBrokersAvailable,
)
from redis.asyncio import connection as redis_connection
from redis.exceptions import ClusterError, OutOfMemoryError, ReadOnlyError, ResponseError
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
    ResponseError,  # a few mean "not now" (`refusing_writes`); the rest (WRONGTYPE, a bug) are raised
)
"""What may be an outage; `transient` says which of them really are."""
REFUSING_WRITES = ("BUSY ", "NOREPLICAS ")  # the codes redis-py leaves in the message of a ResponseError
_KAFKA_OUTAGE = (KafkaConnectionError, KafkaTimeoutError, KafkaUnavailableError, NoBrokersAvailable)
TORN: tuple[type[BaseException], ...] = (AttributeError, TypeError)
"""What redis-py's asyncio connection raises when another task tore it down under a command (its writer set
to None): a Redis Cluster failover disconnects a node's connections while a pipeline still writes on one."""
_REDIS_CONNECTION = Path(redis_connection.__file__).resolve()


def torn_connection(exc: BaseException) -> bool:
    """A TORN error about None (the writer, the transport's callback) raised inside redis-py's connection
    module: a lost connection, not a bug of ours nor a setting redis-py refuses (a TypeError there too)."""
    if not isinstance(exc, TORN) or not str(exc).startswith("'NoneType' object"):
        return False
    frame = exc.__traceback__
    while frame is not None:
        if Path(frame.tb_frame.f_code.co_filename).resolve() == _REDIS_CONNECTION:
            return True
        frame = frame.tb_next
    return False


def refusing_writes(exc: BaseException) -> bool:
    """Redis up but refusing writes for now: at `maxmemory` under noeviction (OOM), turned read-only (a
    replica, READONLY), `min-replicas-to-write` unmet (NOREPLICAS), another client's long script (BUSY).
    Each lasts until an operator or Redis itself ends it, and a refused script did not run (commit.lua's
    `#!lua` line makes Redis check all four before it starts), so it is sent again as is. Raised, it
    stopped the worker with a traceback (exit 1), and a supervisor's restart met the same refusal."""
    if isinstance(exc, (OutOfMemoryError, ReadOnlyError)):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(REFUSING_WRITES)


def transient(exc: BaseException) -> bool:
    """An outage to wait out. A Kafka error the broker says will not change on a retry (record too large,
    not authorised, corrupt record...) is not: retrying it forever would stall every partition unseen."""
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False)) or isinstance(exc, _KAFKA_OUTAGE)
    if isinstance(exc, ResponseError) and not isinstance(exc, ClusterError):  # ClusterDownError is both
        return refusing_writes(exc)
    return isinstance(exc, TRANSIENT) or torn_connection(exc)


async def retry(
    action: Callable[[], Awaitable[T]], what: str, counted: Callable[[str], None], max_backoff_s: float
) -> T:
    """Run `action` until it succeeds, backing off exponentially; `counted(what)` is told of each retry."""
    delay = 0.05
    while True:
        try:
            return await action()
        except (*TRANSIENT, *TORN) as exc:
            if not transient(exc):
                raise
            counted(what)
            log.warning("%s failed (%s: %s); retrying in %.2fs", what, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
