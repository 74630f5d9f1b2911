"""One poll's batches, the partitions at once: each partition's waits on Redis overlap the others'."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from streams.worker.batch import Incoming
from streams.worker.ownership import Owned

Submit = Callable[[int, Sequence[Incoming], Owned | None], Coroutine[Any, Any, None]]


async def submit_at_once(
    submit: Submit, batches: Sequence[tuple[int, Sequence[Incoming], Owned | None]]
) -> None:
    """`submit` each (partition, records, owner it was fetched for) of one poll, the partitions concurrently.

    Each partition's batch waits on Redis (load) and on its previous batch (publish, commit); one after the
    other, a poll of four partitions waited four round trips before its last partition was applied, and every
    event fetched meanwhile waited for the whole cycle. Concurrently the waits overlap, while each
    partition's batches still go through steps 1-7 in log order (one poll, one batch per partition; the next
    poll starts once this one's steps 1-3 are done). A failure cancels the other partitions' steps 1-3
    (nothing is written by them, but for an owed sweep (`sweep_mark.pay_owed`) cancelled between its publish
    and its commit: its mark stays in Redis and the next claim pays it again) and is raised as is."""
    ready = [(p, records, owner) for p, records, owner in batches if owner is not None and records]
    if len(ready) <= 1:  # the usual case at a low rate: no task to create
        for partition, records, owner in ready:
            await submit(partition, records, owner)
        return
    tasks = [asyncio.create_task(submit(p, records, owner)) for p, records, owner in ready]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:  # a failure, or this coroutine cancelled: no partition's steps 1-3 go on unattended
        pending = [task for task in tasks if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    for task in tasks:  # in partition order, as the loop raised before
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
