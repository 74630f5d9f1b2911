"""OpenAPI 3.1 description of the HTTP read API (hand-written; component schemas from the pydantic models)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic.json_schema import models_json_schema

from streams.read.auth import SCOPES
from streams.read.columns import catalogue
from streams.read.history import History, SegmentAt
from streams.read.kpis import Crosstab, GridKpis
from streams.read.members_cursor import cursor_pattern
from streams.read.profile import CustomerProfile, Kpis, MembersPage
from streams.read.reader import ID_PATTERN


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "error")
_CID = {
    "name": "customer_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": ID_PATTERN},
}
_EXPORT_TYPES = ("text/csv", "application/x-ndjson")
_FORMAT = {
    "name": "format",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["csv", "jsonl"]},
    "description": "default: from the Accept header, else csv",
}


def _period(partitions: int) -> list[dict[str, Any]]:
    """since / until / cursor of a changes request; a cursor names every partition of the topic in order."""
    offsets = ",".join(f"{p}:[0-9]{{1,19}}" for p in range(partitions))
    time = {"type": "string", "format": "date-time"}
    return [
        {"name": "since", "in": "query", "required": False, "schema": time},
        {"name": "until", "in": "query", "required": False, "schema": time},
        {
            "name": "cursor",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "pattern": f"^{offsets}$"},
            "description": "`X-Segstream-Next-Cursor` of the previous sync; with since: the later start",
        },
        {
            "name": "after_export",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["true", "false"]},
            "description": "true for the first sync after a full export: each customer moved in the period "
            "as its end state (entered: upsert, left: delete), right whatever the export saw",
        },
    ]


_STATUS_TEXT = {
    400: "bad parameter",
    401: "no valid API key (WWW-Authenticate: Bearer)",
    403: "the key lacks the scope",
    404: "unknown customer, grid or segment",
    409: "the namespace cannot be read by this segstream (another storage format or partition count), or a"
    " members cursor's walk began in another namespace or build of it: the error names the fix",
    503: "Redis slow, down or busy: retry after Retry-After seconds",
}


def _columns(grids: Sequence[str]) -> dict[str, Any]:
    """`columns=a,b`: distinct names of the export's catalogue (the default set when absent)."""
    names = list(catalogue(grids))
    return {
        "name": "columns",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "schema": {"type": "array", "items": {"type": "string", "enum": names}, "uniqueItems": True},
        "description": "comma-separated column names (docs/export.md); the default set when absent",
    }


def _day_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
    }


def _get(
    summary: str,
    ok: dict[str, Any],
    params: list[dict[str, Any]],
    errors: tuple[int, ...],
    scope: str | None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok, "500": _ERROR}
    codes = (*errors, 503) if scope is None else (*errors, 401, 403, 503)
    for status in codes:
        responses[str(status)] = {**_ERROR, "description": _STATUS_TEXT[status]}
    operation: dict[str, Any] = {"summary": summary, "parameters": params, "responses": responses}
    if scope is None:
        operation["security"] = []
    else:
        operation["security"] = [{"bearer": [scope]}]
        operation["description"] = f"Needs an API key with the scope `{scope}`."
    return {"get": operation}


def spec(
    grids: Mapping[str, Sequence[str]], scope_of: Mapping[str, str | None], partitions: int
) -> dict[str, Any]:
    """The document for these grids (declared as enums) and these route scopes (None: open)."""
    grid_names = sorted(grids)
    segment_names = sorted({s for segments in grids.values() for s in segments})
    grid = {"name": "grid", "in": "path", "required": True, "schema": {"type": "string", "enum": grid_names}}
    segment = {
        "name": "segment",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": segment_names},
        "description": "a segment of the grid (another grid's segment: 404)",
    }
    _, defs = models_json_schema(
        [
            (m, "serialization")
            for m in (CustomerProfile, History, SegmentAt, Kpis, MembersPage, GridKpis, Crosstab)
        ],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
        "required": ["error", "status"],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "segstream read API",
            "version": "1",
            "description": "Customer profiles, segment history, counts, KPIs and members from Redis.",
        },
        "paths": {
            "/customers/{customer_id}": _get(
                "Profile of one customer: segments per grid, RFM, lifecycle, metrics, freshness. Money as"
                " `{amount, currency}` (amount: exact decimal string, major units) beside the `*_minor`"
                " integers.",
                _json(_ref("CustomerProfile")),
                [_CID],
                (400, 404, 409),
                scope_of.get("/customers/{customer_id}"),
            ),
            "/customers/{customer_id}/history": _get(
                "Kept transitions of the customer, oldest first (capped: see `trimmed`).",
                _json(_ref("History")),
                [_CID],
                (400, 404, 409),
                scope_of.get("/customers/{customer_id}/history"),
            ),
            "/customers/{customer_id}/segments/{grid}": _get(
                "Segment of the customer in a grid, now or `as_of` an instant: from the history up to the"
                " customer's clock, beyond it `projected` by advancing the stored state (or `beyond_clock`,"
                " unknown, without the state's definitions).",
                _json(_ref("SegmentAt")),
                [
                    _CID,
                    grid,
                    {
                        "name": "as_of",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "format": "date-time"},
                    },
                ],
                (400, 404, 409),
                scope_of.get("/customers/{customer_id}/segments/{grid}"),
            ),
            "/grids": _get(
                "Every grid and its segments.",
                _json(
                    {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}
                ),
                [],
                (),
                scope_of.get("/grids"),
            ),
            "/grids/{grid}/segments": _get(
                "Customers, net revenue, orders and average basket per segment: `revenue` and"
                " `average_basket` as exact decimal strings in major units with the currency (the basket"
                " rounded half-to-even to the minor unit); `revenue_minor`, `average_basket_minor` stay.",
                _json(
                    {
                        "type": "object",
                        "properties": {
                            "grid": {"type": "string"},
                            "segments": {"type": "object", "additionalProperties": _ref("Kpis")},
                        },
                    }
                ),
                [grid],
                (404, 409),
                scope_of.get("/grids/{grid}/segments"),
            ),
            "/grids/{grid}/flows": _get(
                "Entries and exits per UTC day and segment.",
                _json({"type": "object"}),
                [grid],
                (404, 409),
                scope_of.get("/grids/{grid}/flows"),
            ),
            "/grids/{grid}/kpis": _get(
                "Per-segment KPIs over the UTC days `from`..`to` (inclusive; each optional): members at the"
                " start and end, entries, exits, orders, net revenue and its share, average basket,"
                " conversion of entrants within `conversion_days`, churn; and per retention period wholly"
                " inside the days, its cohorts' retention, orders, frequency and basket (docs/read_side.md).",
                _json(_ref("GridKpis")),
                [grid, _day_param("from"), _day_param("to")],
                (400, 404, 409),
                scope_of.get("/grids/{grid}/kpis"),
            ),
            "/crosstab/{rows}/{columns}": _get(
                "Customers, orders and net revenue per (segment of `rows`, segment of `columns`), now; for a"
                " grid pair kept by the definitions (`kpis.crosstabs`), either way round (else 404).",
                _json(_ref("Crosstab")),
                [{**grid, "name": "rows"}, {**grid, "name": "columns"}],
                (404, 409),
                scope_of.get("/crosstab/{rows}/{columns}"),
            ),
            "/grids/{grid}/segments/{segment}/members": _get(
                "One page of the segment's members (bitmap walk); follow `next_cursor` until null.",
                _json(_ref("MembersPage")),
                [
                    grid,
                    segment,
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": cursor_pattern(partitions)},
                        "description": "`next_cursor` of the previous page",
                    },
                    {
                        "name": "count",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100},
                    },
                ],
                (400, 404, 409),
                scope_of.get("/grids/{grid}/segments/{segment}/members"),
            ),
            "/grids/{grid}/segments/{segment}/export": _get(
                "The segment's members with chosen columns, streamed as CSV or JSON lines (docs/export.md);"
                " declared personal data columns need `pii:read` too (403).",
                {"description": "OK", "content": {t: {"schema": {"type": "string"}} for t in _EXPORT_TYPES}},
                [grid, segment, _FORMAT, _columns(grid_names)],
                (400, 404, 409),
                scope_of.get("/grids/{grid}/segments/{segment}/export"),
            ),
            "/grids/{grid}/segments/{segment}/changes": _get(
                "Who entered and who left the segment over a period of the transitions topic (since a time or"
                " a cursor, until a time or now); the next cursor in `X-Segstream-Next-Cursor`.",
                {"description": "OK", "content": {t: {"schema": {"type": "string"}} for t in _EXPORT_TYPES}},
                [grid, segment, _FORMAT, *_period(partitions)],
                (400, 404, 409),
                scope_of.get("/grids/{grid}/segments/{segment}/changes"),
            ),
            "/health": _get(
                "Redis reachable and the namespace served; 503 also when the namespace cannot be read by this"
                " segstream (body: status, redis, error naming the fix; no Retry-After).",
                _json({"type": "object"}),
                [],
                (503,),
                scope_of.get("/health"),
            ),
            "/metrics": _get(
                "Worker counters, batch latency and lag (Prometheus text format).",
                {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}},
                [],
                (),
                scope_of.get("/metrics"),
            ),
            "/openapi.json": _get(
                "This description.",
                _json({"type": "object"}),
                [],
                (),
                scope_of.get("/openapi.json"),
            ),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "API key; scopes: "
                    + "; ".join(f"`{name}`: {what}" for name, what in SCOPES.items()),
                }
            },
        },
    }
