"""A worker started without SEGSTREAM_NAMESPACE follows `segstream promote` instead of writing on, unseen,
into a namespace nobody reads any more."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streams.retry import TRANSIENT
from streams.store import StateStore

log = logging.getLogger("segstream.worker")
CHECK_INTERVAL_S = 1.0
"""How often the worker reads the active-namespace pointer (one GET): the read side re-reads it as often."""


class FollowRefused(RuntimeError):
    """The promoted namespace was built with other definitions than the worker's: following would mix."""


@dataclass
class NamespaceFollow:
    """The namespace the worker writes into, and how to read the pointer and reach another namespace."""

    current: str
    read_active: Callable[[], Awaitable[str]]
    store_for: Callable[[str], StateStore]
    definitions_of: Callable[[str], Awaitable[str | None]]  # the version a namespace was built with, if known
    next_check: float = 0.0

    async def moved(self) -> str | None:
        """The active namespace if the pointer moved away from `current`, else None; reads it at most every
        CHECK_INTERVAL_S. An unreachable Redis is not a move: the next check reads again."""
        now = time.monotonic()
        if now < self.next_check:
            return None
        self.next_check = now + CHECK_INTERVAL_S
        try:
            active = await self.read_active()
        except TRANSIENT as exc:
            log.warning(
                "could not read the active namespace (%s: %s); checking again", type(exc).__name__, exc
            )
            return None
        return None if active == self.current else active
