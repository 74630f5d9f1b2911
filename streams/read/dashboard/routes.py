"""The dashboard's routes on the read API: the static page and its assets (public), and the aggregate answers
it draws (sizes over time, transitions between dates, definitions and a candidate's preview; scoped).

Why the page is public: a browser cannot send an `Authorization` header when it navigates, so `/` and its
assets carry no data at all; the page asks for an API key, keeps it in sessionStorage and sends it as
`Authorization: Bearer` on every fetch, which the API checks like any client's (docs/security.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from aiohttp import web

from segmentation import DefinitionsError
from streams.read.dashboard.aggregates import parse_day, segment_moves, segment_sizes
from streams.read.dashboard.openapi_paths import paths
from streams.read.dashboard.preview import MAX_CHARACTERS, definitions_info, preview
from streams.read.http_guard import SCOPE_OF, Handler
from streams.read.http_guard import json_response as _json
from streams.read.reader import BadRequest, SegmentReader

# The only files served: name -> content type (no path from the request ever reaches the file system).
ASSETS = {
    "echarts.min.js": "text/javascript",
    "app.js": "text/javascript",
    "app.css": "text/css",
}
# No inline script, no other origin: the page cannot be made to run injected code or to call out.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
READER: web.AppKey[SegmentReader] = web.AppKey("dashboard_reader", SegmentReader)
_LIMIT = re.compile(r"[0-9]{1,7}")  # the preview's `limit`, 1..1000000


def asset(name: str) -> bytes:
    return resources.files("streams.read.dashboard").joinpath("static", name).read_bytes()


def _reader(request: web.Request) -> SegmentReader:
    return request.app[READER]


def _headers(content_type: str) -> dict[str, str]:
    return {
        "Content-Type": content_type + "; charset=utf-8",
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


async def get_page(request: web.Request) -> web.Response:
    return web.Response(body=asset("index.html"), headers=_headers("text/html"))


async def get_asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    kind = ASSETS.get(name)
    if kind is None:
        raise web.HTTPNotFound()
    return web.Response(body=asset(name), headers=_headers(kind))


async def get_sizes(request: web.Request) -> web.Response:
    start = parse_day(request.query.get("from"), "from")
    end = parse_day(request.query.get("to"), "to")
    sizes = await segment_sizes(_reader(request), request.match_info["grid"], start, end)
    return _json(sizes.model_dump(mode="json"))


async def get_moves(request: web.Request) -> web.Response:
    start = parse_day(request.query.get("from"), "from")
    end = parse_day(request.query.get("to"), "to")
    moves = await segment_moves(_reader(request), request.match_info["grid"], start, end)
    return _json(moves.model_dump(mode="json"))


async def get_definitions(request: web.Request) -> web.Response:
    return _json(await definitions_info(_reader(request)))


async def post_preview(request: web.Request) -> web.Response:
    if not request.body_exists:
        raise BadRequest("the candidate definitions file is the request body (YAML)")
    most = 4 * MAX_CHARACTERS  # bytes of UTF-8
    if request.content_length is not None and request.content_length > most:
        raise BadRequest(f"a definitions file of at most {MAX_CHARACTERS} characters")
    body = await request.content.read(most + 1)
    raw = request.query.get("limit", "")
    limit = None
    if raw:
        # at most 7 ASCII digits before int(): int() of more than 4,300 digits raises (a 500, not a 400)
        if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= 1_000_000:
            raise BadRequest("limit must be an integer within 1..1000000")
        limit = int(raw)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the definitions file must be UTF-8") from None
    if len(text) > MAX_CHARACTERS:
        raise BadRequest(f"a definitions file of at most {MAX_CHARACTERS} characters")
    try:
        return _json(await preview(_reader(request), text, limit))
    except DefinitionsError as exc:
        raise BadRequest(str(exc)) from None


# method, path, handler, scope (None: public; the page and its assets hold no data)
DASHBOARD_ROUTES: tuple[tuple[str, str, Handler, str | None], ...] = (
    ("GET", "/", get_page, None),
    ("GET", "/dashboard/{name}", get_asset, None),
    ("GET", "/grids/{grid}/sizes", get_sizes, "segments:read"),
    ("GET", "/grids/{grid}/moves", get_moves, "segments:read"),
    ("GET", "/definitions", get_definitions, "segments:read"),
    ("POST", "/definitions/preview", post_preview, "segments:read"),
)


def openapi_paths(grids: Mapping[str, Sequence[str]], scope_of: Mapping[str, str | None]) -> dict[str, Any]:
    return paths(grids, scope_of, list(ASSETS))


def register(app: web.Application, reader: SegmentReader) -> None:
    """Add the dashboard's routes and their scopes to the read API (called by `streams.read.api.make_app`)."""
    app[READER] = reader
    for method, path, handler, scope in DASHBOARD_ROUTES:
        app[SCOPE_OF][path] = scope
        app.router.add_route(method, path, handler)
