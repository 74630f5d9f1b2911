"""Workers writing a namespace, as their own reports say (`metrics_hash.running_workers`): what deletes or
rebuilds a namespace (`namespaces drop`, `replay --force`) refuses to do it under them.

Why: a worker whose partition keys were dropped under it finds its fence gone at its next commit. It is fenced
out and claims the partition again, from the offset the new meta holds (none): it rebuilds part of the dropped
namespace from the log, or writes into the replay's build. A stopped worker retires its report at once; a
crashed one stops counting after `FRESH_S` seconds. (`definitions apply` has its own check, with `--force`.)
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from streams.store.keys import KeySpace
from streams.store.metrics_hash import FRESH_S, running_workers
from streams.store.namespaces import NamespaceRefused
from streams.store.replies import texts


async def refuse_running(client: aioredis.Redis, keys: KeySpace, doing: str, hint: str = "") -> None:
    """Raise NamespaceRefused (exit 3) when a worker reported on `keys.namespace` within FRESH_S seconds."""
    row = texts(await client.hgetall(keys.metrics()))
    running = running_workers(row, time.time())
    if running:
        ages = ", ".join(f"{worker} ({age:.1f} s ago)" for worker, age in sorted(running.items()))
        raise NamespaceRefused(
            f"workers are running on namespace {keys.namespace!r}: {ages}; stop them before {doing}"
            f" (a stopped worker says so at once, a crashed one after {FRESH_S:.0f} s){hint}"
        )
