"""HTTP export routes: a segment's members as CSV / JSON lines, streamed; who entered and left it.

    GET /grids/{grid}/segments/{segment}/export?format=csv|jsonl&columns=a,b     (members:read)
    GET /grids/{grid}/segments/{segment}/changes?since=|cursor=[&until=]&format=  (members:read)

An audience is the grid `audience:<name>`, segment `member`. The format is `format`, else the `Accept`
header (`application/x-ndjson` gives JSON lines), else CSV. Declared personal data columns need `pii:read`
(403 without it). Everything is checked before the first byte: an unknown grid or segment is 404, an unknown
column or a bad period 400. The members export is a chunked `StreamResponse` (constant memory, no overall
deadline: each Redis call is bounded by `SEGSTREAM_REDIS_TIMEOUT_S`); a failure after the first byte cuts
the connection, so a client never takes a truncated export for a complete one (the chunked body has no end).
The changes answer carries the next cursor in `X-Segstream-Next-Cursor`.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import cast

import orjson
from aiohttp import web

from streams.read.changes import CHANGE_COLUMNS, Change, ChangesError, changes
from streams.read.columns import ColumnError, catalogue, parse_columns
from streams.read.export import FORMATS, Format, Selection, check_layout, encode_rows, member_rows
from streams.read.http_guard import READER, error, gate_slot, gated, granted, log, streamed
from streams.read.members_walk import WalkMoved, gone
from streams.read.reader import BadRequest, NotFound, SegmentReader
from streams.store.readable import current_standing

__all__ = ["get_changes", "get_export"]

NEXT_CURSOR = "X-Segstream-Next-Cursor"


def _reader(request: web.Request) -> SegmentReader:
    return request.app[READER]


def _format(request: web.Request) -> Format:
    asked = request.query.get("format")
    if asked is None:
        return "jsonl" if "application/x-ndjson" in request.headers.get("Accept", "") else "csv"
    if asked not in FORMATS:
        raise BadRequest("format must be csv or jsonl")
    return cast(Format, asked)


def _target(request: web.Request, reader: SegmentReader) -> tuple[str, str]:
    grid, segment = request.match_info["grid"], request.match_info["segment"]
    segments = reader.grids.get(grid)
    if segments is None:
        raise NotFound(f"unknown grid {grid!r}")
    if segment not in segments:
        raise NotFound(f"unknown segment {segment!r} of grid {grid!r}")
    return grid, segment


def _headers(fmt: Format, name: str) -> dict[str, str]:
    return {
        "Content-Type": f"{FORMATS[fmt]}; charset=utf-8",
        "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
    }


@streamed
async def get_export(request: web.Request) -> web.StreamResponse:
    reader = _reader(request)
    grid, segment = _target(request, reader)
    fmt = _format(request)
    try:
        columns = parse_columns(
            request.query.get("columns"), catalogue(reader.grids), granted(request, "pii:read")
        )
    except ColumnError as exc:
        if exc.forbidden:
            return error(403, str(exc))
        raise BadRequest(str(exc)) from None
    partitions = range(reader.settings.topic_partitions)
    async with gate_slot(request):  # a cluster's gate: 503 before the first byte when no slot is free
        keys, _, standing = await reader.checked()
        await check_layout(reader.client, keys, partitions)  # an earlier layout: 409, not a cut body
        now = await current_standing(reader.client, keys)
        if now != standing:  # 409 now, not a body cut at its start
            raise WalkMoved(gone(keys.namespace, standing, now))
    selection = Selection(grid, segment, columns)
    rows = member_rows(reader.client, keys, partitions, selection, standing=standing)
    name = f"{grid}-{segment}".replace(":", "-")
    response = web.StreamResponse(headers=_headers(fmt, name))
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for block in gated(request, encode_rows(rows, columns, fmt)):
            await response.write(block)  # no gate slot held here: a slow reader blocks no other request
    except Exception as exc:  # the status line is sent: cut the connection, never end the body cleanly
        log.warning("export %s %s cut after the first byte: %s", grid, segment, type(exc).__name__)
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    return response


@streamed
async def get_changes(request: web.Request) -> web.Response:
    from aiokafka.errors import KafkaError

    reader = _reader(request)
    grid, segment = _target(request, reader)
    fmt = _format(request)
    query = request.query
    since, until = _instant(query.get("since"), "since"), _instant(query.get("until"), "until")
    if query.get("after_export", "false") not in ("true", "false"):
        raise BadRequest("after_export is true or false")
    after_export = query.get("after_export") == "true"  # the first sync after a full export: end states
    try:
        cursor, (_, build, _) = query.get("cursor"), await reader.checked()  # the build the cursor names
        found, span = await changes(
            reader.settings, grid, segment, since, until, cursor, after_export=after_export, build=build
        )
    except ChangesError as exc:
        if exc.moved:
            raise WalkMoved(str(exc)) from None
        if exc.missing:
            raise NotFound(str(exc)) from None
        raise BadRequest(str(exc)) from None
    except KafkaError as exc:
        log.warning("changes: Kafka unavailable: %s", type(exc).__name__)
        return error(503, "the transitions topic is unavailable, retry", {"Retry-After": "1"})
    name = f"{grid}-{segment}-changes".replace(":", "-")
    headers = {**_headers(fmt, name), NEXT_CURSOR: span.cursor()}
    return web.Response(body=_changes_body(found, fmt), headers=headers)


def _changes_body(found: list[Change], fmt: Format) -> bytes:
    if fmt == "jsonl":
        return b"".join(orjson.dumps(c.as_dict()) + b"\n" for c in found)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CHANGE_COLUMNS)
    writer.writerows(["" if v is None else v for v in c.as_dict().values()] for c in found)
    return buffer.getvalue().encode()


def _instant(raw: str | None, name: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 time with zone") from None
    if moment.tzinfo is None:
        raise BadRequest(f"{name} must carry a time zone")
    return moment
