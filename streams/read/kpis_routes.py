"""HTTP routes of the per-segment KPIs and grid crossings (registered in `streams.read.api.ROUTES`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from aiohttp import web

from streams.read.http_guard import Handler, json_response
from streams.read.reader import BadRequest, SegmentReader


def _day(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a day, YYYY-MM-DD") from None


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
