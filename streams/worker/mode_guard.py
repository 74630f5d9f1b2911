"""One clock per namespace: a worker is refused next to running workers of another SEGSTREAM_MODE.

Why: the workers of a group share the namespace's partitions, and the mode decides how each is applied: live,
an event dated more than SEGSTREAM_MAX_FUTURE_SKEW_S after its record's time is a dead letter and a caught-up
partition is swept by the wall clock; replay, neither. A second worker started without the first one's
`SEGSTREAM_MODE=replay` (another shell, the default `live`) joined the group and made the result depend on
which partitions Kafka gave it. Each worker states its mode in the namespace's metrics hash with its reports
(`metrics_hash.worker_fields`); a worker starting beside running ones of another mode exits 3 before it joins
the group. So does one whose other settings that change what it writes differ from theirs
(`applied_settings`): output topics, history kept, dead letters cut, and live, the future skew allowed. A
worker without a partition (more workers than partitions) does not report, so is not seen."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from streams.settings import Settings
from streams.store.keys import KeySpace
from streams.store.metrics_hash import FRESH_S, running_values
from streams.store.replies import texts


class ModeMismatch(RuntimeError):
    """Running workers of the namespace apply it in another mode (exit code 3: refused by a guard)."""

    exit_code = 3


def applied_settings(settings: Settings) -> str:
    """The settings besides the mode that change what a worker writes, as `NAME=value` words: workers of one
    namespace with other values would write their partitions' transitions to another topic, keep another
    number of history entries, cut dead letters elsewhere, or (live) dead-letter other events."""
    applied = {
        "SEGSTREAM_TRANSITIONS_TOPIC": settings.transitions_topic,
        "SEGSTREAM_DLQ_TOPIC": settings.dlq_topic,
        "SEGSTREAM_HISTORY_SIZE": str(settings.history_size),
        "SEGSTREAM_DLQ_MAX_VALUE_BYTES": str(settings.dlq_max_value_bytes),
    }
    if settings.mode == "live":  # replay applies no future skew
        applied["SEGSTREAM_MAX_FUTURE_SKEW_S"] = f"{settings.max_future_skew_s:g}"
    return " ".join(f"{name}={value}" for name, value in sorted(applied.items()))


def _differences(theirs: str, ours: str) -> list[str]:
    """`NAME=their value` for each setting of `theirs` that `ours` gives another value or lacks."""
    mine = dict(word.partition("=")[::2] for word in ours.split())
    return [w for w in theirs.split() if mine.get(w.partition("=")[0]) != w.partition("=")[2]]


async def check_mode(settings: Settings, client: aioredis.Redis, keys: KeySpace) -> None:
    """Raise ModeMismatch when a worker that reported within FRESH_S s runs in another mode, or with other
    `applied_settings`."""
    row, now = texts(await client.hgetall(keys.metrics())), time.time()
    modes = running_values(row, now, "mode")
    others = {worker: mode for worker, mode in modes.items() if mode != settings.mode}
    if others:
        names = ", ".join(f"{worker} ({mode})" for worker, mode in sorted(others.items()))
        raise ModeMismatch(
            f"workers of namespace {keys.namespace!r} run in another mode: {names}; this one has "
            f"SEGSTREAM_MODE={settings.mode}: start it with their mode (each would apply its partitions by "
            f"another clock), or stop them first (a stopped worker says so at once, a crashed one after "
            f"{FRESH_S:.0f} s)"
        )
    ours = applied_settings(settings)
    differing = {
        worker: diff
        for worker, theirs in running_values(row, now, "applies").items()
        if modes.get(worker, settings.mode) == settings.mode and (diff := _differences(theirs, ours))
    }
    if differing:
        names = "; ".join(f"{worker}: {' '.join(diff)}" for worker, diff in sorted(differing.items()))
        raise ModeMismatch(
            f"workers of namespace {keys.namespace!r} run with other settings: {names}; this one has "
            f"{ours}: start it with theirs (workers of one namespace must write alike), or stop them first"
        )
