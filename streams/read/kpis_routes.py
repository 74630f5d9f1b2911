"""HTTP routes of the per-segment KPIs and grid crossings (registered in `streams.read.api.ROUTES`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from aiohttp import web

from streams.read.dashboard.aggregates import parse_day
from streams.read.http_guard import Handler, json_response
from streams.read.reader import SegmentReader


def _day(request: web.Request, name: str) -> date | None:
    """`parse_day`'s YYYY-MM-DD: a length check let ISO week dates through ("2026-W01-1" is 10 long)."""
    return parse_day(request.query.get(name), name)


def kpi_handlers(reader_of: Callable[[web.Request], SegmentReader]) -> tuple[Handler, Handler]:
    """The two handlers, given how the app finds its reader (the app key lives in `api`)."""

    async def get_kpis(request: web.Request) -> web.Response:
        """`GET /grids/{grid}/kpis?from=YYYY-MM-DD&to=YYYY-MM-DD` (both optional, inclusive, UTC days)."""
        grid = request.match_info["grid"]
        answer = await reader_of(request).grid_kpis(grid, _day(request, "from"), _day(request, "to"))
        return json_response(answer.model_dump(mode="json"))

    async def get_crosstab(request: web.Request) -> web.Response:
        """`GET /crosstab/{rows}/{columns}`: a kept grid pair, either way round."""
        rows, columns = request.match_info["rows"], request.match_info["columns"]
        answer = await reader_of(request).crosstab(rows, columns)
        return json_response(answer.model_dump(mode="json"))

    return get_kpis, get_crosstab
