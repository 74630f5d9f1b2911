"""The dashboard's routes in the read API's OpenAPI document (every served route is described there)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streams.read.openapi import _get, _json

_DAY = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "format": "date"}


def _range() -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": False, "schema": _DAY, "description": what}
        for name, what in (("from", "first UTC day (YYYY-MM-DD)"), ("to", "last UTC day (YYYY-MM-DD)"))
    ]


def paths(
    grids: Mapping[str, Sequence[str]], scope_of: Mapping[str, str | None], assets: Sequence[str]
) -> dict[str, Any]:
    grid = {
        "name": "grid",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": sorted(grids)},
    }
    html = {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}}
    script = {
        "description": "OK",
        "content": {
            "text/javascript": {"schema": {"type": "string"}},
            "text/css": {"schema": {"type": "string"}},
        },
    }
    asset = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": list(assets)},
    }
    preview = _get(
        "Who a candidate definitions file (YAML body) would move: at most `limit` stored customers"
        " re-segmented (default 20000), per grid (from, to, customers, example ids). Nothing is written.",
        _json({"type": "object"}),
        [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000000},
            }
        ],
        (400,),
        scope_of.get("/definitions/preview"),
    )["get"]
    preview["requestBody"] = {
        "required": True,
        "content": {"application/yaml": {"schema": {"type": "object"}}},
        "description": "the candidate definitions file: a YAML mapping of at most 65,536 characters",
    }
    return {
        "/": _get("The dashboard page (no data: it asks for an API key).", html, [], (), scope_of.get("/")),
        "/dashboard/{name}": _get(
            "A static asset of the dashboard.", script, [asset], (404,), scope_of.get("/dashboard/{name}")
        ),
        "/grids/{grid}/sizes": _get(
            "Customers per segment at the end of each UTC day of the range (default: the first to the last"
            " day with a flow): today's counts minus the later days' net flows.",
            _json({"type": "object"}),
            [grid, *_range()],
            (400, 404),
            scope_of.get("/grids/{grid}/sizes"),
        ),
        "/grids/{grid}/moves": _get(
            "Transitions per (from, to) segment pair whose effective UTC day is within the range ('-': no"
            " segment).",
            _json({"type": "object"}),
            [grid, *_range()],
            (400, 404),
            scope_of.get("/grids/{grid}/moves"),
        ),
        "/definitions": _get(
            "The definitions version served and the one the namespace was built with; grids; customers.",
            _json({"type": "object"}),
            [],
            (),
            scope_of.get("/definitions"),
        ),
        "/definitions/preview": {"post": preview},
    }
