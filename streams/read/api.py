"""HTTP read API (aiohttp): customers, history, grids, counts + KPIs, members, health, metrics, OpenAPI.

    python -m streams.read.api [--host 127.0.0.1] [--port 8080]      (settings: SEGSTREAM_* environment)

JSON everywhere except /metrics (Prometheus text). 404 for an unknown customer, grid or segment, 400 for a bad
parameter; an unexpected error answers a generic 500 body, its detail goes to the log only.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from streams.read.openapi import spec
from streams.read.reader import BadRequest, NotFound, SegmentReader
from streams.settings import Settings
from streams.store.metrics_hash import prometheus
from streams.store.replies import text as _text

log = logging.getLogger("segstream.api")
READER: web.AppKey[SegmentReader] = web.AppKey("reader", SegmentReader)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message, "status": status}, status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return _error(400, str(exc))
    except NotFound as exc:
        return _error(404, str(exc))
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _error(exc.status, exc.reason)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal error")


def _reader(request: web.Request) -> SegmentReader:
    return request.app[READER]


async def get_customer(request: web.Request) -> web.Response:
    cid = request.match_info["customer_id"]
    profile = await _reader(request).get_customer(cid)
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
    raw_count = request.query.get("count", "100")
    if not raw_count.isdigit():
        raise BadRequest("count must be an integer within 1..10000")
    page = await _reader(request).members_page(grid, segment, request.query.get("cursor"), int(raw_count))
    return _json({"grid": grid, "segment": segment, **page.model_dump(mode="json")})


async def get_health(request: web.Request) -> web.Response:
    reader = _reader(request)
    try:
        ok = await reader.ping()
        namespace = await reader.namespace()
    except Exception as exc:  # Redis down: a health answer, not an error page
        log.warning("health check failed: %s", exc)
        return _json({"status": "unavailable", "redis": False}, 503)
    return _json({"status": "ok" if ok else "unavailable", "redis": ok, "namespace": namespace})


async def get_metrics(request: web.Request) -> web.Response:
    reader = _reader(request)
    keys = await reader.keyspace()
    row = await reader.client.hgetall(keys.metrics())
    text = prometheus({_text(k): _text(v) for k, v in row.items()}, keys.namespace)
    return web.Response(text=text, content_type="text/plain", charset="utf-8", headers={"X-Format": "0.0.4"})


async def get_openapi(request: web.Request) -> web.Response:
    return _json(spec())


ROUTES: tuple[tuple[str, Handler], ...] = (
    ("/customers/{customer_id}", get_customer),
    ("/customers/{customer_id}/history", get_history),
    ("/customers/{customer_id}/segments/{grid}", get_segment_of),
    ("/grids", get_grids),
    ("/grids/{grid}/segments", get_segments),
    ("/grids/{grid}/flows", get_flows),
    ("/grids/{grid}/segments/{segment}/members", get_members),
    ("/health", get_health),
    ("/metrics", get_metrics),
    ("/openapi.json", get_openapi),
)


def make_app(reader: SegmentReader, close_reader: bool = False) -> web.Application:
    app = web.Application(middlewares=[errors])
    app[READER] = reader
    for path, handler in ROUTES:
        app.router.add_get(path, handler, allow_head=False)
    if close_reader:

        async def close(app: web.Application) -> None:
            await app[READER].aclose()

        app.on_cleanup.append(close)
    return app


async def app_from_settings(settings: Settings) -> web.Application:
    return make_app(await SegmentReader.connect(settings), close_reader=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="segstream api", description="Serve the HTTP read API.")
    parser.add_argument("--host", default=None, help="default: SEGSTREAM_API_HOST or 127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: SEGSTREAM_API_PORT or 8080")
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    host = args.host or settings.api_host
    port = args.port if args.port is not None else settings.api_port
    web.run_app(app_from_settings(settings), host=host, port=port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
