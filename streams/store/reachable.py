"""Waiting for a service at start-up, bounded: a worker or API started a little before Kafka or Redis (a
reboot, `docker compose up`, a rolling deploy) should wait for them a while, say so once, and then give up
with one line (exit code 4) rather than die at once with a connection traceback.

Generic over the service: the caller gives one connection attempt; this module knows no settings (the
store imports nothing of `streams/`), so the caller also gives the address as it may be shown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, ClusterDownError, RedisClusterException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

TIMEOUT_VARIABLE = "SEGSTREAM_CONNECT_TIMEOUT_S"
_PAUSE_S = 0.5  # between attempts
_ATTEMPT_MAX_S = 5.0  # one attempt (connect + one request) never takes longer than this


class ServiceUnreachable(Exception):
    """A service did not answer within the start-up wait; the message says what to do (exit code 4)."""

    exit_code = 4


async def wait_for(
    service: str,
    address: str,
    attempt: Callable[[], Awaitable[object]],
    *,
    retry_on: tuple[type[BaseException], ...],
    give_up_on: tuple[type[BaseException], ...] = (),
    timeout_s: float,
    note: Callable[[str], None],
    advice: str,
) -> None:
    """Call `attempt` until it succeeds or `timeout_s` passed (at least one attempt); on the first failure
    `note` gets one line saying we wait; in the end ServiceUnreachable with the last reason and `advice`."""
    deadline = time.monotonic() + timeout_s
    shown = f"{round(timeout_s, 1):g}"
    noted = False
    retryable: tuple[type[BaseException], ...] = (*retry_on, TimeoutError)
    while True:
        remaining = deadline - time.monotonic()
        try:
            await asyncio.wait_for(attempt(), max(0.5, min(_ATTEMPT_MAX_S, remaining)))
            return
        except give_up_on:
            raise
        except retryable as exc:
            reason = str(exc).strip() or type(exc).__name__
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServiceUnreachable(
                f"{service} at {address} did not answer within {shown} s: {advice};"
                f" to wait longer set {TIMEOUT_VARIABLE} (last error: {reason})"  # cut last if too long
            )
        if not noted:
            note(f"waiting for {service} at {address} (up to {shown} s, {TIMEOUT_VARIABLE})")
            noted = True
        await asyncio.sleep(min(_PAUSE_S, remaining))


def no_cluster_node(exc: BaseException) -> bool:
    """redis-py's cluster client found no entry node reachable: it says so with a RedisClusterException,
    a class that also carries configuration errors, not with a connection error (an outage all the same)."""
    return isinstance(exc, RedisClusterException) and "cannot be connected" in str(exc)


async def wait_for_redis(
    make_client: Callable[[], aioredis.Redis],
    address: str,
    *,
    timeout_s: float,
    note: Callable[[str], None],
) -> None:
    """Until Redis answers PING. A refused password is not waited for: it will not get better."""

    async def ping() -> None:
        client = make_client()
        try:
            await client.ping()
        except RedisClusterException as exc:
            if no_cluster_node(exc):  # waited for; the class's configuration errors are not
                raise RedisConnectionError(str(exc)) from None
            raise
        finally:
            await client.aclose()

    await wait_for(
        "Redis",
        address,
        ping,
        retry_on=(RedisConnectionError, RedisTimeoutError, ClusterDownError, OSError),
        give_up_on=(AuthenticationError,),
        timeout_s=timeout_s,
        note=note,
        advice="start it (python -m streams.devstack up) or fix SEGSTREAM_REDIS_URL",
    )
