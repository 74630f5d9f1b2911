"""HTTP read API (aiohttp): customers, history, grids, counts + KPIs, members, health, metrics, OpenAPI.

    python -m streams.read.api [--host 127.0.0.1] [--port 8080] [--no-auth] [--tls-cert F --tls-key F]

JSON everywhere except /metrics (Prometheus text). Every route but /health and /openapi.json needs an API key
with the route's scope (streams/read/auth.py, docs/security.md). 400 for a bad parameter, 401/403 for a
missing key / scope, 404 for an unknown customer, grid or segment, 503 + Retry-After when Redis is slow, down
or busy; an unexpected error answers a generic 500 body, its detail goes to the log only.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import datetime

from aiohttp import web

from segmentation import Definitions
from streams import logs
from streams.read import http_guard
from streams.read.auth import Authenticator
from streams.read.dashboard import routes as dashboard
from streams.read.export_api import get_changes, get_export
from streams.read.http_guard import (
    AUTH,
    GATE,
    SCOPE_OF,
    TIMEOUT,
    Handler,
    RequestGate,
    authenticate,
    deadline,
    errors,
    gate,
    granted,
    log,
)
from streams.read.http_guard import json_response as _json
from streams.read.kpis_routes import kpi_handlers
from streams.read.openapi import spec
from streams.read.reader import BadRequest, NotFound, SegmentReader
from streams.read.serve import checked_config
from streams.settings import Settings
from streams.store.connection import is_cluster
from streams.store.metrics_hash import prometheus
from streams.store.replies import text as _text
from streams.store.stored_state import StoredFormatError

READER = http_guard.READER  # one key object, also when this module runs as __main__ (python -m)
_DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII only: str.isdigit() accepts '²', which int() then refuses


def _reader(request: web.Request) -> SegmentReader:
    return request.app[READER]


def int_param(raw: str, name: str, low: int, high: int) -> int:
    """A query integer: ASCII digits, within [low, high]; anything else is a 400 naming the limits."""
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadRequest(f"{name} must be an integer within {low}..{high}")
    return int(raw)


async def get_customer(request: web.Request) -> web.Response:
    cid = request.match_info["customer_id"]
    profile = await _reader(request).get_customer(cid, declared=granted(request, "pii:read"))
    if profile is None:
        raise NotFound(f"unknown customer {cid!r}")
    return _json(profile.model_dump(mode="json"))


async def get_history(request: web.Request) -> web.Response:
    cid = request.match_info["customer_id"]
    history = await _reader(request).history(cid)
    if history is None:
        raise NotFound(f"unknown customer {cid!r}")
    return _json(history.model_dump(mode="json"))


async def get_segment_of(request: web.Request) -> web.Response:
    cid, grid = request.match_info["customer_id"], request.match_info["grid"]
    raw = request.query.get("as_of")
    as_of = None
    if raw:
        try:
            as_of = datetime.fromisoformat(raw)
        except ValueError:
            raise BadRequest("as_of must be an ISO 8601 time with zone") from None
    answer = await _reader(request).segment_of(cid, grid, as_of)
    if answer.status == "unknown_customer":
        raise NotFound(f"unknown customer {cid!r}")
    return _json(answer.model_dump(mode="json"))


async def get_grids(request: web.Request) -> web.Response:
    return _json({grid: list(segments) for grid, segments in _reader(request).grids.items()})


async def get_segments(request: web.Request) -> web.Response:
    grid = request.match_info["grid"]
    kpis = await _reader(request).segment_kpis(grid)
    return _json({"grid": grid, "segments": {s: k.model_dump(mode="json") for s, k in kpis.items()}})


async def get_flows(request: web.Request) -> web.Response:
    grid = request.match_info["grid"]
    return _json({"grid": grid, "days": await _reader(request).segment_flows(grid)})


async def get_members(request: web.Request) -> web.Response:
    grid, segment = request.match_info["grid"], request.match_info["segment"]
    count = int_param(request.query.get("count", "100"), "count", 1, 10_000)
    page = await _reader(request).members_page(grid, segment, request.query.get("cursor"), count)
    return _json({"grid": grid, "segment": segment, **page.model_dump(mode="json")})


async def get_health(request: web.Request) -> web.Response:
    reader = _reader(request)
    try:
        ok = await reader.ping()
        namespace = await reader.namespace()
    except StoredFormatError as exc:  # Redis answers; the namespace cannot be read with these settings
        log.warning("health check failed: %s", exc)
        return _json({"status": "unavailable", "redis": True, "error": str(exc)}, 503)
    except Exception as exc:  # Redis down: a health answer, not an error page
        log.warning("health check failed: %s", type(exc).__name__)
        return _json({"status": "unavailable", "redis": False}, 503, {"Retry-After": "1"})
    return _json({"status": "ok" if ok else "unavailable", "redis": ok, "namespace": namespace})


async def get_metrics(request: web.Request) -> web.Response:
    reader = _reader(request)
    keys = (
        await reader.namespace_keys()
    )  # unchecked: a namespace no reader can read still has workers to watch
    row = await reader.client.hgetall(keys.metrics())
    text = prometheus({_text(k): _text(v) for k, v in row.items()}, keys.namespace)
    return web.Response(text=text, content_type="text/plain", charset="utf-8", headers={"X-Format": "0.0.4"})


async def get_openapi(request: web.Request) -> web.Response:
    scopes: dict[str, str | None] = request.app[SCOPE_OF]
    reader = _reader(request)
    document = spec(reader.grids, scopes, reader.settings.topic_partitions)
    document["paths"].update(dashboard.openapi_paths(reader.grids, scopes))  # the dashboard's routes
    return _json(document)


get_kpis, get_crosstab = kpi_handlers(_reader)

# path, handler, scope needed (None: open to anyone who can reach the port)
ROUTES: tuple[tuple[str, Handler, str | None], ...] = (
    ("/customers/{customer_id}", get_customer, "profiles:read"),
    ("/customers/{customer_id}/history", get_history, "profiles:read"),
    ("/customers/{customer_id}/segments/{grid}", get_segment_of, "profiles:read"),
    ("/grids", get_grids, "segments:read"),
    ("/grids/{grid}/segments", get_segments, "segments:read"),
    ("/grids/{grid}/flows", get_flows, "segments:read"),
    ("/grids/{grid}/kpis", get_kpis, "segments:read"),
    ("/crosstab/{rows}/{columns}", get_crosstab, "segments:read"),
    ("/grids/{grid}/segments/{segment}/members", get_members, "members:read"),
    ("/grids/{grid}/segments/{segment}/export", get_export, "members:read"),
    ("/grids/{grid}/segments/{segment}/changes", get_changes, "members:read"),
    ("/health", get_health, None),
    ("/metrics", get_metrics, "metrics:read"),
    ("/openapi.json", get_openapi, None),
)


def make_app(
    reader: SegmentReader,
    auth: Authenticator,
    close_reader: bool = False,
    metrics_public: bool = False,
    request_timeout_s: float = 5.0,
) -> web.Application:
    """The application; `auth` is required: `Authenticator.disabled()` is the explicit no-auth choice."""
    app = web.Application(middlewares=[errors, deadline, authenticate, gate])
    settings = reader.settings
    if is_cluster(settings.redis_url, settings.redis_cluster):
        app[GATE] = RequestGate(settings.api_redis_max_connections, settings.api_redis_pool_timeout_s)
    app[READER] = reader
    app[AUTH] = auth
    app[TIMEOUT] = request_timeout_s
    app[SCOPE_OF] = {
        path: (None if path == "/metrics" and metrics_public else scope) for path, _, scope in ROUTES
    }
    for path, handler, _ in ROUTES:
        app.router.add_get(path, handler, allow_head=False)
    dashboard.register(app, reader)  # `/`, its assets and the aggregates it draws (docs/dashboard.md)
    if close_reader:

        async def close(app: web.Application) -> None:
            await app[READER].aclose()

        app.on_cleanup.append(close)
    return app


async def app_from_settings(
    settings: Settings, auth: Authenticator, definitions: Definitions | None = None
) -> web.Application:
    return make_app(
        await SegmentReader.connect(settings, definitions=definitions),
        auth,
        close_reader=True,
        metrics_public=settings.api_metrics_public,
        request_timeout_s=settings.api_request_timeout_s,
    )


def main(argv: list[str] | None = None) -> int:
    config = checked_config(argv)  # one line and exit code 2 on a broken or unsafe configuration
    if isinstance(config, int):
        return config
    logs.configure(config.settings.log_format)  # no-op under `segstream api` (configured by the CLI)
    logging.getLogger("aiohttp.server").addFilter(http_guard.MalformedRequests())
    web.run_app(
        app_from_settings(config.settings, config.auth, config.definitions),
        host=config.host,
        port=config.port,
        ssl_context=config.ssl_context,
        access_log=None,
        print=lambda _banner: _listening(config.host, config.port, config.ssl_context is not None),
        loop=_event_loop(),
    )
    return 0


def _listening(host: str, port: int, https: bool) -> None:
    """Called by aiohttp once the port is open (never when binding failed), so the line is true."""
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if https else "http"
    logging.getLogger("segstream.api").info("listening on %s://%s:%s", scheme, shown, port)


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where available: under 500 concurrent connections it more than halves the p99 (measured
    1.1 s -> 0.46 s, docs/security.md); the standard loop otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":
    raise SystemExit(main())
