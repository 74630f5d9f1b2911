"""A worker started without SEGSTREAM_NAMESPACE follows `segstream promote` instead of writing on, unseen,
into a namespace nobody reads any more."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from streams.store.definitions_record import DefinitionsRecord, partition_count_conflict
from streams.store.port import StateStore
from streams.worker.retry import TORN, TRANSIENT, transient

log = logging.getLogger("segstream.worker")
CHECK_INTERVAL_S = 1.0
"""How often the worker reads the active-namespace pointer (one GET): the read side re-reads it as often."""


class DefinitionsMismatch(RuntimeError):
    """The namespace records other definitions than the worker's: writing into it would mix two versions."""


class PartitionsMismatch(DefinitionsMismatch):
    """The namespace was built for another partition count than the worker's SEGSTREAM_TOPIC_PARTITIONS."""


def partitions_rule(namespace: str, recorded: int | None, mine: int) -> None:
    """`partition_count_conflict` for a worker: PartitionsMismatch, so it exits before writing anything."""
    conflict = partition_count_conflict(namespace, recorded, mine)
    if conflict is not None:
        raise PartitionsMismatch(
            f"{conflict}. Refusing to write into it: run the worker with the count of its events topic, and"
            " replay with the same SEGSTREAM_TOPIC_PARTITIONS."
        )


class PartitionCounts(Protocol):
    """Where a namespace records the partition count it was built for (`RedisDefinitionsRecord`)."""

    async def partitions(self, namespace: str) -> int | None: ...

    async def record_partitions(self, namespace: str, count: int) -> None: ...


async def check_partitions(
    record: PartitionCounts, namespace: str, mine: int
) -> Callable[[], Awaitable[None]]:
    """`partitions_rule` at start-up and on a promote: raises PartitionsMismatch (nothing written), else
    returns what records the worker's count in a namespace that records none (one a worker started, as a
    replay records its own), to run once every other rule let the worker in."""
    recorded = await record.partitions(namespace)
    partitions_rule(namespace, recorded, mine)

    async def record_count() -> None:
        if recorded is None:
            await record.record_partitions(namespace, mine)

    return record_count


def definitions_rule(namespace: str, recorded: str | None, mine: str, adopt: bool) -> str | None:
    """The one rule at start-up and on a promote. Returns the version to record (None: leave it).

    Nothing recorded: the namespace takes the worker's. Another version recorded: refused, unless the
    operator rolls new definitions out lazily (SEGSTREAM_ADOPT_DEFINITIONS=true): then the namespace is
    declared moving to the worker's, customer by customer as their events arrive."""
    if recorded is None:
        return mine
    if recorded == mine:
        return None
    if adopt:
        log.warning(
            "namespace %s records definitions %s; adopting %s: customers move as their events arrive "
            "(`segstream definitions apply` moves them all at once)",
            namespace, recorded, mine,
        )  # fmt: skip
        return mine
    raise DefinitionsMismatch(
        f"namespace {namespace!r} was built with definitions {recorded!r} and this worker runs {mine!r}: "
        f"refusing to write into it (its customers would be re-segmented back). Run the worker with the "
        f"definitions file of version {recorded!r}, or set SEGSTREAM_ADOPT_DEFINITIONS=true to move the "
        "namespace to this worker's definitions."
    )


async def check_claim(record: DefinitionsRecord, namespace: str, mine: str, adopt: bool) -> None:
    """`definitions_rule` for a claim: raise DefinitionsMismatch, or record what the rule says to record
    (an adoption also marks the namespace's partitions to realign, `streams/worker/realign.py`)."""
    recorded = await record.version(namespace)
    version = definitions_rule(namespace, recorded, mine, adopt)
    if version is not None:
        await record.record(namespace, version, adopted=recorded is not None)


@dataclass
class NamespaceFollow:
    """The namespace the worker writes into, and how to read the pointer and reach another namespace."""

    current: str
    read_active: Callable[[], Awaitable[str]]
    store_for: Callable[[str], StateStore]
    definitions_of: Callable[[str], Awaitable[str | None]]  # the version a namespace was built with, if known
    record_definitions: Callable[[str, str], Awaitable[None]]  # (namespace, version)
    next_check: float = 0.0
    # `partitions_rule` for a namespace: raises, or returns what records the worker's count if none is
    check_partitions: Callable[[str], Awaitable[Callable[[], Awaitable[None]]]] | None = None

    async def moved(self) -> str | None:
        """The active namespace if the pointer moved away from `current`, else None; reads it at most every
        CHECK_INTERVAL_S. An unreachable Redis is not a move: the next check reads again."""
        now = time.monotonic()
        if now < self.next_check:
            return None
        self.next_check = now + CHECK_INTERVAL_S
        try:
            active = await self.read_active()
        except (*TRANSIENT, *TORN) as exc:
            if not transient(exc):
                raise
            log.warning(
                "could not read the active namespace (%s: %s); checking again", type(exc).__name__, exc
            )
            return None
        return None if active == self.current else active
