"""HTTP routes of the per-segment KPIs and grid crossings (registered in `streams.read.api.ROUTES`)."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from streams.read.http_guard import json_response
from streams.read.reader import BadRequest, SegmentReader


def _reader(request: web.Request) -> SegmentReader:
    from streams.read.api import READER  # the app key lives with the app

    return request.app[READER]


def _day(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a day, YYYY-MM-DD") from None


async def get_kpis(request: web.Request) -> web.Response:
    """`GET /grids/{grid}/kpis?from=YYYY-MM-DD&to=YYYY-MM-DD` (both optional, inclusive, UTC days)."""
    grid = request.match_info["grid"]
    answer = await _reader(request).grid_kpis(grid, _day(request, "from"), _day(request, "to"))
    return json_response(answer.model_dump(mode="json"))


async def get_crosstab(request: web.Request) -> web.Response:
    """`GET /crosstab/{rows}/{columns}`: a kept grid pair, either way round."""
    rows, columns = request.match_info["rows"], request.match_info["columns"]
    answer = await _reader(request).crosstab(rows, columns)
    return json_response(answer.model_dump(mode="json"))
