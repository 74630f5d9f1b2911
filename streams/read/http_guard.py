"""Middlewares of the HTTP read API: error shaping, per-request timeout and overload, authentication.

Why here and not in each handler: every route must answer the same way to the same failure. A bad
parameter is 400, an unknown thing 404, a missing or unknown key 401 (with `WWW-Authenticate`), a key without
the route's scope 403, a wrong method 405 with `Allow`, and Redis being slow, down or its pool exhausted
503 with `Retry-After` (never a 500: the client can retry). Only a bug answers a generic 500 (detail: log).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
import redis.exceptions
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from streams.read.auth import ApiKey, Authenticator
from streams.read.reader import BadRequest, NotFound, SegmentReader
from streams.store.stored_state import StoredFormatError

log = logging.getLogger("segstream.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AUTH: web.AppKey[Authenticator] = web.AppKey("auth", Authenticator)
READER: web.AppKey[SegmentReader] = web.AppKey("reader", SegmentReader)
SCOPE_OF = web.AppKey("scope_of", dict[str, str | None])
TIMEOUT: web.AppKey[float] = web.AppKey("timeout", float)
KEY: web.RequestKey[ApiKey] = web.RequestKey("key", ApiKey)  # the caller (absent: authentication disabled)
RETRY_AFTER_S = "1"
_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, TimeoutError)
T = TypeVar("T")
STREAMED: set[Handler] = set()  # handlers whose answer may take longer than the deadline (exports)


def streamed(handler: Handler) -> Handler:
    """Marks a route whose answer is streamed: no overall deadline (each Redis call keeps its timeout), and
    no gate slot for the whole response (it takes `gate_slot` / `gated` around its Redis calls, if any)."""
    STREAMED.add(handler)
    return handler


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_response({"error": message, "status": status}, status, headers)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return error(400, str(exc))
    except NotFound as exc:
        return error(404, str(exc))
    except StoredFormatError as exc:  # a namespace of another storage format: rebuild it (replay)
        return error(409, str(exc))
    except web.HTTPException as exc:
        if exc.status >= 400:
            kept = {k: v for k, v in exc.headers.items() if k in ("Allow", "WWW-Authenticate", "Retry-After")}
            return error(exc.status, exc.reason, kept)
        raise
    except _UNAVAILABLE as exc:
        log.warning("503 on %s %s: %s", request.method, request.path, type(exc).__name__)
        return error(503, "temporarily unavailable, retry", {"Retry-After": RETRY_AFTER_S})
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error(500, "internal error")


@web.middleware
async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request within `api_request_timeout_s` (the pool wait included); past it, 503 (see errors)."""
    if request.match_info.handler in STREAMED:
        return await handler(request)
    async with asyncio.timeout(request.app[TIMEOUT]):
        return await handler(request)


class RequestGate:
    """At most `limit` requests use Redis at once; the next waits up to `wait_s`, then 503. For a Redis
    Cluster, whose redis-py client has no waiting pool (a node's `max_connections` all busy raise at once):
    a request holds at most one connection per node at a time, so this bounds each node's connections as a
    single server's blocking pool bounds its own (streams/store/connection.py). A streamed export holds a
    slot per Redis step, not per response (`gated`), as a pooled connection is held per command."""

    def __init__(self, limit: int, wait_s: float) -> None:
        self.slots = asyncio.Semaphore(limit)
        self.wait_s = wait_s

    @asynccontextmanager
    async def slot(self, wait_s: float | None) -> AsyncIterator[None]:
        """One slot for the block; none within `wait_s` (None: no limit) is a busy pool (503, see errors)."""
        try:  # asyncio.timeout, not wait_for: 3.11's wait_for can swallow the request deadline's cancel
            async with asyncio.timeout(wait_s):
                await self.slots.acquire()
        except TimeoutError:
            raise redis.exceptions.ConnectionError("no Redis connection free in time") from None
        try:
            yield
        finally:
            self.slots.release()


GATE: web.AppKey[RequestGate] = web.AppKey("gate", RequestGate)


@web.middleware
async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Wait for a slot of the app's RequestGate (when it has one); none within its wait: 503 (see errors).
    Runs after `authenticate`: a caller without a valid key is answered 401 at once, never queued here.
    Streamed routes pass: they take the gate per Redis step themselves (`gated`)."""
    slots = request.app.get(GATE)
    if slots is None or request.match_info.handler in STREAMED:
        return await handler(request)
    async with slots.slot(slots.wait_s):
        return await handler(request)


@asynccontextmanager
async def gate_slot(request: web.Request) -> AsyncIterator[None]:
    """A slot of the app's gate (when it has one) for a streamed route's Redis calls before its first byte:
    none within the gate's wait is 503, as for any other request."""
    slots = request.app.get(GATE)
    if slots is None:
        yield
        return
    async with slots.slot(slots.wait_s):
        yield


async def gated(request: web.Request, steps: AsyncIterator[T]) -> AsyncIterator[T]:
    """`steps` (each one's Redis calls) within a slot of the app's gate, released while the caller writes
    the step's block: a slow reader of a long export then holds no slot, and others are served meanwhile.
    Mid-stream the wait has no limit: the response has begun, a 503 is no longer possible (the deadline
    does not cover streamed routes; each Redis call keeps its own timeout)."""
    slots = request.app.get(GATE)
    if slots is None:
        async for step in steps:
            yield step
        return
    while True:
        async with slots.slot(None):
            try:
                step = await anext(steps)
            except StopAsyncIteration:
                return
        yield step


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """401 without a valid bearer key, 403 when the key lacks the route's scope; open routes pass."""
    match = request.match_info
    if match.http_exception is not None:  # unknown route or method: 404 / 405 whoever asks
        raise match.http_exception
    auth = request.app[AUTH]
    resource = match.route.resource
    scope = request.app[SCOPE_OF].get(resource.canonical if resource else "")
    if scope is None or not auth.enabled:
        return await handler(request)
    key = auth.identify(request.headers.get("Authorization"))
    if key is None:
        return error(
            401,
            "a valid API key is required (Authorization: Bearer <key>)",
            {"WWW-Authenticate": _challenge()},
        )
    if scope not in key.scopes:
        return error(
            403,
            f"this key lacks the scope {scope!r}",
            {"WWW-Authenticate": _challenge(f', error="insufficient_scope", scope="{scope}"')},
        )
    request[KEY] = key
    return await handler(request)


class MalformedRequests(logging.Filter):
    """aiohttp answers a request it cannot parse (bytes that are not a URL, a line over 8190 bytes) with a
    400 and logs it as an ERROR with a traceback and the offending bytes. Any client can send such a request,
    so that would let anyone flood the log with false alarms, and the bytes may be a customer's id or a token
    (docs/privacy.md: logs hold no payload). Installed on `aiohttp.server`, it makes such a record one
    WARNING line naming the client and the exception class only; any other record passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            client = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "400 to a malformed request from %s: %s"
            record.args = (client, type(exc).__name__)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


def _challenge(extra: str = "") -> str:
    return f'Bearer realm="segstream"{extra}'


def granted(request: web.Request, scope: str) -> bool:
    """Whether the caller holds `scope` (always, when authentication is disabled on loopback)."""
    if not request.app[AUTH].enabled:
        return True
    key: ApiKey | None = request.get(KEY)
    return key is not None and scope in key.scopes
