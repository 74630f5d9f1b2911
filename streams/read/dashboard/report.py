"""`segstream report`: the dashboard's segment views for a period as one self-contained HTML file (or PDF).

Why the dashboard's own code: the file embeds the API's answers for fixed URLs (`window.SEGSTREAM_REPORT`),
the vendored chart library and the page's script and style, so it opens anywhere without network and shows
exactly the figures the dashboard shows for the same period. No customer ids, profiles or member lists are
embedded (a report is shared by email): sizes, transitions, KPIs and the kept grid crossings only (the
crossings, drawn below the KPI table, are in the PDF too). PDF: Debian's Chromium prints it (`chromium
--headless --print-to-pdf`), the acceptable simple way; no extra library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.read.dashboard.aggregates import parse_day, segment_moves, segment_sizes
from streams.read.dashboard.routes import asset
from streams.read.reader import BadRequest, SegmentReader
from streams.settings import Settings

CHROMIUM = "/usr/bin/chromium"


class ReportError(ValueError):
    """A report that cannot be made as asked (exit code 2)."""

    exit_code = 2


def run(settings: Settings, args: argparse.Namespace) -> int:
    """`segstream report`; its arguments are declared in streams/cli.py (importing this module loads the
    read side: a second or more of start-up that no other command should pay)."""
    try:
        start, end = parse_day(args.start, "--from"), parse_day(args.end, "--to")
    except BadRequest as exc:
        raise ReportError(str(exc)) from None
    data = asyncio.run(collect(settings, start, end, args.grid))
    html = render(data)
    output = Path(args.output)
    if args.format == "pdf":
        print_pdf(html, output)
    else:
        output.write_text(html, encoding="utf-8")
    print(
        f"wrote {output} ({data['period']['from']} to {data['period']['to']}, namespace {data['namespace']})"
    )
    return 0


async def collect(
    settings: Settings, start: date | None, end: date | None, first_grid: str
) -> dict[str, Any]:
    """The API's answers for every URL the page asks in report mode, for the period."""
    reader = await SegmentReader.connect(settings)
    try:
        if first_grid not in reader.grids:
            raise ReportError(f"unknown grid {first_grid!r}; known: {', '.join(reader.grids)}")
        if end is None or start is None:
            days = (await segment_sizes(reader, "lifecycle", None, None)).days
            last = end or (date.fromisoformat(days[-1]) if days else datetime.now(UTC).date())
            start = start or max(last - timedelta(days=89), date.fromisoformat(days[0]) if days else last)
            end = last
        if start > end:
            raise ReportError("--from must not be after --to")
        query = f"?from={start.isoformat()}&to={end.isoformat()}"
        responses: dict[str, Any] = {"/grids": {g: list(s) for g, s in reader.grids.items()}}
        for grid in reader.grids:
            kpis = await reader.segment_kpis(grid)
            responses[f"/grids/{grid}/segments"] = {
                "grid": grid,
                "segments": {s: k.model_dump(mode="json") for s, k in kpis.items()},
            }
            sizes = await segment_sizes(reader, grid, start, end)
            responses[f"/grids/{grid}/sizes{query}"] = sizes.model_dump(mode="json")
            moves = await segment_moves(reader, grid, start, end)
            responses[f"/grids/{grid}/moves{query}"] = moves.model_dump(mode="json")
            period_kpis = await reader.grid_kpis(grid, start, end)
            responses[f"/grids/{grid}/kpis{query}"] = period_kpis.model_dump(mode="json")
        crosstabs = [list(pair) for pair in reader.definitions.kpis.crosstabs]
        for a, b in crosstabs:  # either way round, as the API answers
            for rows, columns in ((a, b), (b, a)):
                cross = await reader.crosstab(rows, columns)
                responses[f"/crosstab/{rows}/{columns}"] = cross.model_dump(mode="json")
        return {
            "namespace": await reader.namespace(),
            "period": {"from": start.isoformat(), "to": end.isoformat()},
            "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "first_grid": first_grid,
            "crosstabs": crosstabs,
            "responses": responses,
        }
    finally:
        await reader.aclose()


def _inline_script(text: str) -> str:
    """Script text safe inside <script>: no `</` can close the element early."""
    return text.replace("</", "<\\/")


def render(data: dict[str, Any]) -> str:
    page = asset("index.html").decode("utf-8")
    head, _, rest = page.partition('<link rel="stylesheet"')
    body = rest[rest.index("</head>") :]
    payload = json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("<", "\\u003c")
    inline = (
        f"<style>\n{asset('app.css').decode('utf-8')}\n</style>\n"
        f"<script>{_inline_script(asset('echarts.min.js').decode('utf-8'))}</script>\n"
        f"<script>window.SEGSTREAM_REPORT = {payload};</script>\n"
    )
    body = body.replace(
        "</body>", f"<script>{_inline_script(asset('app.js').decode('utf-8'))}</script>\n</body>"
    )
    title = f"<title>segstream report {data['period']['from']} to {data['period']['to']}</title>"
    return head.replace("<title>segstream dashboard</title>", title) + inline + body


def print_pdf(html: str, output: Path) -> None:
    binary = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if binary is None:
        raise ReportError("--format pdf needs Debian's chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "report.html"
        source.write_text(html, encoding="utf-8")
        result = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
                "--virtual-time-budget=10000",
                f"--user-data-dir={folder}/profile",
                f"--print-to-pdf={output.resolve()}",
                source.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if result.returncode != 0 or not output.exists():
        raise ReportError(f"chromium could not print the PDF: {result.stderr.strip()[-300:]}")
