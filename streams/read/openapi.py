"""OpenAPI 3.1 description of the HTTP read API (hand-written; component schemas from the pydantic models)."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from streams.read.history import History, SegmentAt
from streams.read.profile import CustomerProfile, Kpis, MembersPage


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = _json(_ref("Error"), "error")
_CID = {"name": "customer_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 256}}
_GRID = {"name": "grid", "in": "path", "required": True, "schema": {"type": "string"}}
_SEGMENT = {"name": "segment", "in": "path", "required": True, "schema": {"type": "string"}}


def _get(
    summary: str, ok: dict[str, Any], params: list[dict[str, Any]], errors: tuple[int, ...]
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok, "500": _ERROR}
    for status in errors:
        responses[str(status)] = _ERROR
    return {"get": {"summary": summary, "parameters": params, "responses": responses}}


def spec() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(m, "serialization") for m in (CustomerProfile, History, SegmentAt, Kpis, MembersPage)],
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
                "Profile of one customer: segments per grid, RFM, lifecycle, metrics, freshness.",
                _json(_ref("CustomerProfile")),
                [_CID],
                (400, 404),
            ),
            "/customers/{customer_id}/history": _get(
                "Kept transitions of the customer, oldest first (capped: see `trimmed`).",
                _json(_ref("History")),
                [_CID],
                (400, 404),
            ),
            "/customers/{customer_id}/segments/{grid}": _get(
                "Segment of the customer in a grid, now or `as_of` an instant: from the history up to the"
                " customer's clock, beyond it `projected` by advancing the stored state (or `beyond_clock`,"
                " unknown, without the state's definitions).",
                _json(_ref("SegmentAt")),
                [
                    _CID,
                    _GRID,
                    {
                        "name": "as_of",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "format": "date-time"},
                    },
                ],
                (400, 404),
            ),
            "/grids": _get(
                "Every grid and its segments.",
                _json(
                    {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}
                ),
                [],
                (),
            ),
            "/grids/{grid}/segments": _get(
                "Customers, net revenue (minor units), orders and average basket per segment.",
                _json(
                    {
                        "type": "object",
                        "properties": {
                            "grid": {"type": "string"},
                            "segments": {"type": "object", "additionalProperties": _ref("Kpis")},
                        },
                    }
                ),
                [_GRID],
                (404,),
            ),
            "/grids/{grid}/flows": _get(
                "Entries and exits per UTC day and segment.",
                _json({"type": "object"}),
                [_GRID],
                (404,),
            ),
            "/grids/{grid}/segments/{segment}/members": _get(
                "One page of the segment's members (SSCAN); follow `next_cursor` until null.",
                _json(_ref("MembersPage")),
                [
                    _GRID,
                    _SEGMENT,
                    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
                    {
                        "name": "count",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100},
                    },
                ],
                (400, 404),
            ),
            "/health": _get(
                "Redis reachable and the namespace served.",
                _json({"type": "object"}),
                [],
                (503,),
            ),
            "/metrics": _get(
                "Worker counters, batch latency and lag (Prometheus text format).",
                {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}},
                [],
                (),
            ),
            "/openapi.json": _get("This description.", _json({"type": "object"}), [], ()),
        },
        "components": {"schemas": schemas},
    }
