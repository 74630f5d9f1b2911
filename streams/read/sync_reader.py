"""The read client for synchronous code (scripts, notebooks, WSGI apps): `SegmentReader` on a private loop.

with SyncReader(Settings()) as reader:
    profile = reader.get_customer("42")
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import date, datetime
from typing import Any, TypeVar

from streams.read.history import History, SegmentAt
from streams.read.kpis import Crosstab, GridKpis
from streams.read.profile import CustomerProfile, Kpis
from streams.read.reader import SegmentReader
from streams.settings import Settings

T = TypeVar("T")


class SyncReader:
    """The same reads for synchronous code (a private event loop; not for use inside a running loop)."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        self._runner = asyncio.Runner()
        self._reader = self._runner.run(SegmentReader.connect(settings, **kwargs))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def get_customer(self, customer_id: str, declared: bool = False) -> CustomerProfile | None:
        return self._run(self._reader.get_customer(customer_id, declared))

    def namespace(self) -> str:
        return self._run(self._reader.namespace())

    def history(self, customer_id: str) -> History | None:
        return self._run(self._reader.history(customer_id))

    def segment_of(self, customer_id: str, grid: str, as_of: datetime | None = None) -> SegmentAt:
        return self._run(self._reader.segment_of(customer_id, grid, as_of))

    def segment_count(self, grid: str, segment: str) -> int:
        return self._run(self._reader.segment_count(grid, segment))

    def segment_kpis(self, grid: str) -> dict[str, Kpis]:
        return self._run(self._reader.segment_kpis(grid))

    def grid_kpis(self, grid: str, first: date | None = None, last: date | None = None) -> GridKpis:
        return self._run(self._reader.grid_kpis(grid, first, last))

    def crosstab(self, rows: str, columns: str) -> Crosstab:
        return self._run(self._reader.crosstab(rows, columns))

    def members(self, grid: str, segment: str, count: int = 500) -> list[str]:
        async def collect() -> list[str]:
            return [m async for m in self._reader.iter_members(grid, segment, count)]

        return self._run(collect())

    def close(self) -> None:
        self._run(self._reader.aclose())
        self._runner.close()

    def __enter__(self) -> SyncReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
