"""The lease a replay (or a drop) holds on a namespace while it rewrites it: a second one is refused even
with `--force`, which may only take over from one that is gone.

The building mark (`<prefix>:<namespace>:building`) says a namespace is incomplete and outlives a replay that
died, as it should; but it cannot tell a running replay from a dead one, so `replay --force` or `namespaces
drop` used to drop a namespace under a replay still writing it: the first replay's commits landing while the
drop walked the keys stayed behind it, in the second one's build (the fences refuse the first one's later
commits, so it failed half way, exit 1). The lease is the one key that tells them apart: set with NX and a
time to live, renewed every `RENEW_S` seconds by its holder, deleted (if still its own) when it ends, lapsing
`TTL_S` seconds after a holder that died. It lives outside the namespace (`<prefix>:namespace:lease:{<name>}`,
beside the active pointer), so it neither makes the namespace look "not empty" nor goes with a drop.

A holder that finds another's lease in its place (its event loop was blocked or Redis unreachable for longer
than `TTL_S`, and another took it) stops at once with `LeaseLost` (exit 3) rather than write on beside the
other: its task is cancelled where it awaits. One that finds it lapsed while nobody took it takes it again
(the holder key, without a time to live, tells the two apart). Between the other's take and that renewal (at
most `RENEW_S`) a commit of the old holder can still land during the other's drop: a lease without a fencing
token narrows that window, it cannot close it; the namespace stays marked incomplete until a replay ends, so
`promote` refuses it meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime

import orjson
import redis.asyncio as aioredis

from streams.store.keys import lease_key
from streams.store.namespaces import NamespaceRefused
from streams.store.replies import text

__all__ = ["LeaseHeld", "LeaseLost", "holder_note", "leased"]

TTL_S = 60.0
"""Long against the event loop's longest stretch without an await (a replay batch: seconds), so that a live
holder never lapses; short enough that a killed one frees its namespace within a minute."""
RENEW_S = 10.0

log = logging.getLogger("segstream")

# Registered (EVALSHA) and made of GET / SET / DEL only: the commands segstream's ACL user has
# (docs/security.md). KEYS: the lease, its holder (same slot). The holder key has no time to live: it tells
# a lease that lapsed while nobody took it (the holder still ours: a renewal takes it again) from one that
# another took meanwhile, even one that has ended since (the holder theirs, or gone with their release).
_TAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[1])
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
"""
_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] or (not held and redis.call('GET', KEYS[2]) == ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""


class LeaseHeld(NamespaceRefused):
    """Another replay or drop is rewriting the namespace right now (exit code 3), `--force` or not."""


class LeaseLost(NamespaceRefused):
    """This replay's lease lapsed and another took it: it stopped writing (exit code 3)."""


def holder_note(**what: str) -> bytes:
    """Who is rewriting a namespace, for those refused meanwhile: what, since when, on which host and pid."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    return orjson.dumps(what | {"started": started, "host": socket.gethostname(), "pid": os.getpid()})


@asynccontextmanager
async def leased(client: aioredis.Redis, prefix: str, name: str, note: bytes) -> AsyncIterator[None]:
    """Hold the namespace's lease for the block (`note`: who holds it, shown to those refused), renewed in
    the background; LeaseHeld if another holds it, LeaseLost (the block cancelled) if it is lost meanwhile."""
    keys = [lease_key(prefix, name), lease_key(prefix, name) + ":holder"]
    token = note + b" " + secrets.token_hex(8).encode()  # unique even for two holders with one note
    ttl_ms = int(TTL_S * 1000)
    take, renew_script, release = (client.register_script(x) for x in (_TAKE, _RENEW, _RELEASE))
    if not await take(keys=keys, args=[token, ttl_ms]):  # (a take resent by a cluster client is ours)
        holder = await client.get(keys[0])
        who = "its holder has just ended" if holder is None else text(holder).rsplit(" ", 1)[0]
        raise LeaseHeld(
            f"namespace {name!r} is being rewritten right now ({who}): wait for it to end, or stop it;"
            f" --force does not override a running replay or drop (a lease lapses {TTL_S:.0f} s after its"
            " holder is killed)"
        )
    task = asyncio.current_task()
    assert task is not None
    lost = asyncio.Event()

    async def renew() -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                kept = await renew_script(keys=keys, args=[token, ttl_ms])
            except Exception as exc:  # unreachable, a torn connection: it may lapse; the next try tells
                log.warning("could not renew the lease on namespace %s: %s", name, exc)
                continue
            if not kept:
                lost.set()
                task.cancel()
                return

    renewer = asyncio.create_task(renew(), name=f"lease {name}")
    try:
        yield
    except BaseException as exc:
        await _stop(renewer)
        if not lost.is_set():
            with suppress(Exception):  # else it lapses by itself
                await release(keys=keys, args=[token])
            raise
        task.uncancel()  # the renewer's cancel, delivered here
        raise _lost(name) from (None if isinstance(exc, asyncio.CancelledError) else exc)
    try:
        await _stop(renewer)
    except asyncio.CancelledError:
        if not lost.is_set():  # the caller's own (an interrupt): it goes on up
            raise
    if lost.is_set():  # lost as the block ended: its cancel was delivered to `_stop`, or never will be
        task.uncancel()
        raise _lost(name)
    with suppress(Exception):
        await release(keys=keys, args=[token])


async def _stop(renewer: asyncio.Task[None]) -> None:
    """Cancel the renewer and wait for it, without raising what it raised (and without swallowing a cancel
    of the caller, as `await renewer` under `suppress(CancelledError)` would)."""
    renewer.cancel()
    await asyncio.wait({renewer})


def _lost(name: str) -> LeaseLost:
    return LeaseLost(
        f"namespace {name!r}: this run's lease lapsed and another replay or drop took it; stopped so as not"
        " to write beside it (the namespace is left marked incomplete)"
    )
