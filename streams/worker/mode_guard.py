"""One clock per namespace: a worker is refused next to running workers of another SEGSTREAM_MODE.

Why: the workers of a group share the namespace's partitions, and the mode decides how each is applied: live,
an event dated more than SEGSTREAM_MAX_FUTURE_SKEW_S after the wall clock is a dead letter and a caught-up
partition is swept by the wall clock; replay, neither. A second worker started without the first one's
`SEGSTREAM_MODE=replay` (another shell, the default `live`) joined the group and made the result depend on
which partitions Kafka gave it. Each worker states its mode in the namespace's metrics hash with its reports
(`metrics_hash.worker_fields`); a worker starting beside running ones of another mode exits 3 before it joins
the group. A worker without a partition (more workers than partitions) does not report, so is not seen."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from streams.settings import Settings
from streams.store.keys import KeySpace
from streams.store.metrics_hash import FRESH_S, running_modes
from streams.store.replies import texts


class ModeMismatch(RuntimeError):
    """Running workers of the namespace apply it in another mode (exit code 3: refused by a guard)."""

    exit_code = 3


async def check_mode(settings: Settings, client: aioredis.Redis, keys: KeySpace) -> None:
    """Raise ModeMismatch when a worker that reported within FRESH_S s runs in another mode."""
    modes = running_modes(texts(await client.hgetall(keys.metrics())), time.time())
    others = {worker: mode for worker, mode in modes.items() if mode != settings.mode}
    if others:
        names = ", ".join(f"{worker} ({mode})" for worker, mode in sorted(others.items()))
        raise ModeMismatch(
            f"workers of namespace {keys.namespace!r} run in another mode: {names}; this one has "
            f"SEGSTREAM_MODE={settings.mode}: start it with their mode (each would apply its partitions by "
            f"another clock), or stop them first (a stopped worker says so at once, a crashed one after "
            f"{FRESH_S:.0f} s)"
        )
