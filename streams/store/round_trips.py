"""Commands that coroutines ask of Redis in the same event-loop iteration, sent as one pipeline.

Why: a worker applies a poll's partitions concurrently (streams/worker/concurrent_partitions.py), and each
partition's batch costs two Redis round trips, its load and its commit, each ~120 µs of the worker's CPU in
redis-py and asyncio whatever its size (docs/benchmarks.md, "One round trip per poll"). Asked in the same
iteration, the loads of a poll's partitions, and their commits (their publications' acks come back in one
produce response), now go out as one pipeline: one round trip where there was one per partition.

Nothing changes for a command: within its round trip it is sent on one connection in the order it was
asked; round trips are not ordered with each other, as separate calls were not (each waits for its own
connection, and redis-py sends a pipeline again after a connection error). So only commands that may run
twice go through here: reads, and the commit script, whose sequence number answers 'DUP' to a second run. A
pipeline without MULTI is no transaction: each commit is still its own script, atomic and fenced on its own,
exactly as when sent alone. A reply Redis refused is that caller's `ResponseError` only; a failed connection
fails every caller of the round trip, and each retries as it did. A caller cancelled before its round trip
goes out has its commands left out (cancelled later, they may still run, as a call of its own could); a
round trip interrupted itself (its task cancelled) fails its callers with a connection error, an outcome
unknown to them, never with a cancellation they did not ask for.

A Redis Cluster client sends each caller's commands as their own pipeline (redis-py splits a cluster
pipeline by node, and a commit's keys are one slot anyway).

A single server's round trip is written and read on a connection of the client's pool directly, not through
a redis-py `Pipeline`: its set-up and reset and observability hooks cost ~20-30 µs of the ~150-200 µs of CPU
a round trip took (docs/benchmarks.md, "One round trip per poll"; `benchmarks/bench_round_trip.py`), and
packed by hiredis (`packed`). What stays redis-py's: the pool (its checks of a connection handed out), the
reply parser and its per-command callbacks, the client's retry policy (a connection error disconnects and
sends again, as a pipeline did) and the health check. A round trip that fails or is cancelled half way
disconnects its connection before the pool gets it back: unread replies never reach the next round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from hiredis import pack_command
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import Connection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

Command = Sequence[Any]  # a command's name and arguments, as `execute_command` takes them
_PACKED_AS_IS = (str, bytes, int)  # types whose hiredis encoding is redis-py's (bool, a subclass, is not)


class RoundTrips:
    """One client's commands, shared round trips (see the module docstring)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._shared = not isinstance(client, AsyncRedisCluster)
        self._queue: list[tuple[Sequence[Command], asyncio.Future[list[Any]]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the queue's flush is scheduled on
        self._sending: set[asyncio.Task[None]] = set()

    async def send(self, commands: Sequence[Command]) -> list[Any]:
        """Each command's reply, in order; a command Redis refused has its `ResponseError` as its reply.
        Commands that may run twice only (module docstring)."""
        if not self._shared:  # raising as before: redis-py's cluster retry sees a node's errors
            return await self._pipeline([commands], raise_on_error=True)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        if not self._queue or loop is not self._loop:  # the first of this iteration: send once all asked
            self._queue, self._loop = [], loop
            loop.call_soon(self._flush)
        self._queue.append((commands, future))
        return await future

    async def script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """`script` run on `keys` and `args` in a shared round trip; where Redis does not hold it (NOSCRIPT:
        restarted, flushed), or on a cluster, through redis-py's script object, which loads it first."""
        if self._shared:
            (reply,) = await self.send([("EVALSHA", script.sha, len(keys), *keys, *args)])
            if not isinstance(reply, NoScriptError):
                return checked([reply])[0]
        return await script(keys=keys, args=args)

    def _flush(self) -> None:
        queue = [(commands, future) for commands, future in self._queue if not future.done()]
        self._queue = []
        if queue:
            task = asyncio.ensure_future(self._send(queue))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
            task.add_done_callback(lambda done: _fail_unanswered(queue, done))

    async def _send(self, queue: list[tuple[Sequence[Command], asyncio.Future[list[Any]]]]) -> None:
        replies = await self._pipeline([commands for commands, _ in queue])
        at = 0
        for commands, future in queue:
            if not future.done():
                future.set_result(replies[at : at + len(commands)])
            at += len(commands)

    async def _pipeline(self, calls: Sequence[Sequence[Command]], raise_on_error: bool = False) -> list[Any]:
        if self._shared:
            return await self._exchange([command for commands in calls for command in commands])
        async with self._client.pipeline(transaction=False) as pipe:
            for commands in calls:
                for command in commands:
                    pipe.execute_command(*command)
            return await pipe.execute(raise_on_error=raise_on_error)

    async def _exchange(self, commands: list[Command]) -> list[Any]:
        """Every reply, a refused command's `ResponseError` as its reply (module docstring: why not a
        `Pipeline`). The connection goes back to the pool at once: a store may be short-lived (the dashboard
        makes one per partition and request) and must not hold pool connections after it is dropped."""
        pool = self._client.connection_pool
        conn = await pool.get_connection()  # type: ignore[no-untyped-call]
        done = False
        try:
            replies: list[Any] = await conn.retry.call_with_retry(
                lambda: self._once(conn, commands), lambda _: conn.disconnect()
            )
            done = True
            return replies
        finally:
            try:
                if not done:  # replies may be left unread on it
                    await conn.disconnect(nowait=True)
            finally:  # given back even if cancelled again meanwhile (as redis-py's pipeline does)
                await asyncio.shield(pool.release(conn))

    async def _once(self, conn: Connection, commands: list[Command]) -> list[Any]:
        await conn.send_packed_command(packed(conn, commands))
        replies: list[Any] = []
        for command in commands:
            try:
                replies.append(await self._client.parse_response(conn, command[0]))
            except ResponseError as exc:
                replies.append(exc)
        return replies


def packed(conn: Connection, commands: Sequence[Command]) -> bytes | list[bytes]:
    """The commands in Redis's protocol, by hiredis's C packer: redis-py's asyncio connection packs in Python,
    ~5x the CPU (each argument encoded, the buffer copied at each one). The same bytes as `pack_commands`
    (tests/unit/test_round_trip_packing.py): only texts, bytes and ints are given to hiredis, which encodes a
    text as UTF-8 as the client does; anything else, a text the client's `surrogateescape` would encode (a
    lone surrogate: hiredis refuses it), or a command name not one word of text, goes to redis-py's packer."""
    try:
        parts = []
        for command in commands:
            name = command[0]
            if type(name) is not str or " " in name or any(type(a) not in _PACKED_AS_IS for a in command):
                return conn.pack_commands(commands)
            parts.append(pack_command(tuple(command)))
    except UnicodeEncodeError:
        return conn.pack_commands(commands)
    return b"".join(parts)


def _fail_unanswered(
    queue: list[tuple[Sequence[Command], asyncio.Future[list[Any]]]], task: asyncio.Task[None]
) -> None:
    """A round trip that failed, or whose task was cancelled (even before it started): its callers get the
    error, or a connection error for the cancellation, an outcome unknown to them that each retries, never a
    cancellation they did not ask for."""
    failure = (
        RedisConnectionError("round trip cancelled: outcome unknown")
        if task.cancelled()
        else task.exception()
    )
    if failure is not None:
        for _, future in queue:
            if not future.done():
                future.set_exception(failure)


def checked(replies: list[Any]) -> list[Any]:
    """The replies, or the first error Redis answered with, raised (as a pipeline's `execute()` does)."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies
