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

from streams.store.keys import KeySpace, lease_key
from streams.store.metrics_hash import FRESH_S, running_workers
from streams.store.namespace_marks import ACCEPTED, mark_fields
from streams.store.namespaces import NamespaceRefused
from streams.store.replies import text, texts


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


async def refuse_rewritten(client: aioredis.Redis, keys: KeySpace, active: str) -> None:
    """Raise NamespaceRefused (exit 3) when a replay or drop rewrites `keys.namespace` now (its lease), or
    when a drop or replay left it half done (its mark), unless it was promoted as it is (the `active` one).

    Why: a worker started on a namespace a drop is walking writes keys behind the walk (its partition count
    recorded again in a namespace with no definitions record); on one a drop or replay left half done, it
    writes live events on top of leftovers or of part of a log, and `replay --force` then refuses to run
    under it. The active one is refused too unless `promote --allow-incomplete` accepted its mark (the
    operator chose it as it is): otherwise it is a `replay --into-active` that stopped before its end.
    """
    holder = await client.get(lease_key(keys.prefix, keys.namespace))
    mark = await client.get(keys.building())
    if holder is not None:
        raise NamespaceRefused(
            f"namespace {keys.namespace!r} is being rewritten right now ({text(holder)}): start the worker"
            " once that replay or drop has ended"
        )
    if mark is None:
        return
    note = text(mark)
    fields = mark_fields(note)
    if keys.namespace == active:
        if ACCEPTED in fields:  # promoted as it is (`--allow-incomplete`): chosen
            return
        raise NamespaceRefused(
            f"the active namespace {keys.namespace!r} is incomplete ({note}): a replay --into-active stopped"
            " before its end, or it was promoted with --allow-incomplete before promote recorded that choice;"
            " a worker would write live events on top of part of a log. Replay into another namespace and"
            f" promote it, or accept this one as it is: `segstream promote {keys.namespace}"
            " --allow-incomplete`"
        )
    if "drop" in fields:
        raise NamespaceRefused(
            f"namespace {keys.namespace!r} was being dropped and the drop stopped before its end ({note}):"
            f" run `segstream drop {keys.namespace}` again; a worker would write on its leftovers"
        )
    raise NamespaceRefused(
        f"namespace {keys.namespace!r} is incomplete: a replay into it stopped before its end ({note})."
        " Replay again with --force, or promote it with --allow-incomplete to use it as it is; a worker"
        " would write live events on top of part of a log"
    )
