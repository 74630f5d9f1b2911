"""`segstream kpis` and `segstream crosstab`: per-segment KPIs over a period and a grid crossing, as tables
for people or JSON for scripts (the HTTP API's shapes, docs/read_side.md). Read from aggregate keys only."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import date
from typing import Any

from streams.read.kpis import Crosstab, GridKpis
from streams.read.profile import Money
from streams.settings import Settings

FORMATS = ("table", "json")


def add_parsers(sub: Any) -> None:
    k = sub.add_parser("kpis", help="per-segment KPIs over a period: retention, conversion, churn, revenue")
    k.add_argument("--grid", help="one grid (default: every grid)")
    k.add_argument("--from", dest="first", type=_day, help="first UTC day, YYYY-MM-DD (default: unbounded)")
    k.add_argument("--to", dest="last", type=_day, help="last UTC day, YYYY-MM-DD (default: unbounded)")
    k.add_argument("--format", choices=FORMATS, default="table")
    c = sub.add_parser("crosstab", help="customers and revenue per (segment of grid A, segment of grid B)")
    c.add_argument("rows", metavar="A", help="grid of the rows, e.g. lifecycle")
    c.add_argument("columns", metavar="B", help="grid of the columns, e.g. value")
    c.add_argument("--format", choices=FORMATS, default="table")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None


async def _kpis(settings: Settings, args: argparse.Namespace) -> int:
    async def run(reader: Any) -> str:
        grids = [args.grid] if args.grid else list(reader.grids)
        answers = [await reader.grid_kpis(grid, args.first, args.last) for grid in grids]
        if args.format == "json":
            return _json({a.grid: a.model_dump(mode="json") for a in answers})
        return "\n\n".join(kpi_table(a) for a in answers)

    return await _with_reader(settings, "kpis", run)


async def _crosstab(settings: Settings, args: argparse.Namespace) -> int:
    async def run(reader: Any) -> str:
        answer = await reader.crosstab(args.rows, args.columns)
        return _json(answer.model_dump(mode="json")) if args.format == "json" else crosstab_table(answer)

    return await _with_reader(settings, "crosstab", run)


async def _with_reader(
    settings: Settings, command: str, run: Callable[[Any], Coroutine[Any, Any, str]]
) -> int:
    """Unknown grid, a pair not kept, a bad range: one line, exit code 2; Redis down: streams/errors.py."""
    from streams.read.reader import BadRequest, NotFound, SegmentReader
    from streams.store.namespaces import require_known

    reader = await SegmentReader.connect(settings)
    try:
        if settings.namespace:  # a typo in SEGSTREAM_NAMESPACE is refused (exit 3), not answered with zeros
            await require_known(reader.client, settings.key_prefix, settings.namespace)
        print(await run(reader))
    except (BadRequest, NotFound) as exc:
        print(f"segstream {command}: {exc}", file=sys.stderr)
        return 2
    finally:
        await reader.aclose()
    return 0


def _json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _amount(value: Money | None) -> str:
    return "-" if value is None else value.amount


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(r: Sequence[str]) -> str:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        return "  ".join(cells)

    return [line(r) for r in (header, *rows)]


def kpi_table(k: GridKpis) -> str:
    """The grid's segments over the days, then one block per retention period."""
    span = f"{k.first_day or 'first day'} .. {k.last_day or 'last day'}"
    lines = [
        f"{k.grid}  {span}  ({k.currency}; conversion within {k.conversion_days} days; churn = {k.churn}; "
        f"revenue {k.revenue.amount}, {k.orders} orders)"
    ]
    header: tuple[str, ...] = ("segment", "start", "end", "in", "out", "orders", "revenue", "share")
    header += ("basket", "conv", "churned", "churn")
    rows = [
        (
            name,
            str(s.customers_at_start),
            str(s.customers_at_end),
            str(s.entrants),
            str(s.exits),
            str(s.orders),
            s.revenue.amount,
            _pct(s.revenue_share),
            _amount(s.average_basket),
            _pct(s.conversion),
            str(s.churned),
            _pct(s.churn_rate),
        )
        for name, s in k.segments.items()
    ]
    lines += _table(header, rows)
    for period in k.periods:
        span = f"{period.first_day} .. {period.last_day}"
        lines += ["", f"retention {period.period} ({span}): the segments' members at its start"]
        header = ("segment", "start", "buyers", "retention", "orders", "frequency", "revenue", "basket")
        cohort = [
            (
                name,
                str(c.customers_at_start),
                str(c.buyers),
                _pct(c.retention),
                str(c.orders),
                _ratio(c.purchase_frequency),
                c.revenue.amount,
                _amount(c.average_basket),
            )
            for name, c in period.segments.items()
        ]
        lines += _table(header, cohort)
    return "\n".join(lines)


def crosstab_table(x: Crosstab) -> str:
    """Two blocks, customers then net revenue: rows the segments of `x.rows`, columns those of `x.columns`."""
    columns = list(next(iter(x.cells.values()), {}))
    lines: list[str] = []
    for title, cell_text in (
        ("customers", lambda c: str(c.customers)),
        (f"revenue ({x.currency})", lambda c: c.revenue.amount),
    ):
        lines += [f"{x.rows} x {x.columns}: {title}"]
        rows = [(name, *(cell_text(cells[c]) for c in columns)) for name, cells in x.cells.items()]
        lines += _table((x.rows, *columns), rows)
        lines.append("")
    return "\n".join(lines[:-1])


HANDLERS: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "kpis": _kpis,
    "crosstab": _crosstab,
}
