"""`segstream export`: a segment's or an audience's members as CSV / JSON lines, or who entered and left it
over a period (`--since`, `--cursor`, `--cursor-file`). docs/export.md.

    segstream export lifecycle at_risk --format csv --output at_risk.csv
    segstream export audience win_back --columns customer_id,net,last_purchase_at --format jsonl
    segstream export lifecycle at_risk --since 2026-12-01T00:00:00Z          # entered / left since then
    segstream export lifecycle at_risk --cursor-file crm.cursor               # incremental sync

Rows go to stdout (then the summary and the next cursor go to stderr, so stdout stays the data) or to
`--output FILE`, written to `FILE.part` and renamed when complete: a failed export leaves no partial file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from streams.settings import Settings

if TYPE_CHECKING:
    from streams.read.reader import SegmentReader

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    e = sub.add_parser(
        "export",
        help="a segment's or audience's members as CSV/JSONL, or who entered/left it since a date",
        description="GRID SEGMENT (e.g. lifecycle at_risk), or audience NAME. Without --since/--cursor: the "
        "current members with --columns; with them: who entered and who left over the period.",
    )
    e.add_argument("grid", help="a grid (lifecycle, rfm, value, ...) or 'audience'")
    e.add_argument("segment", nargs="?", help="a segment of the grid, or the audience's name")
    e.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    e.add_argument("--columns", help="comma-separated (default: a documented set; docs/export.md)")
    e.add_argument("--declared", action="store_true", help="allow declared personal data columns")
    e.add_argument("--output", help="a file (written whole or not at all); default stdout")
    e.add_argument("--since", help="changes published at or after this time (ISO 8601 with zone, or a date)")
    e.add_argument("--until", help="changes published before this time (default: now)")
    e.add_argument("--cursor", help="changes after a previous sync's cursor (with --since: the later start)")
    e.add_argument(
        "--lookback",
        type=int,
        default=None,
        help="records per partition read before the period to recognise republished copies (50000)",
    )
    e.add_argument(
        "--cursor-file",
        help="incremental sync: start at the cursor in FILE (or --since when it does not exist yet), "
        "write the next cursor there once the output is complete",
    )


class ExportUsage(ValueError):
    exit_code = 2


def _instant(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ExportUsage(f"{name} must be an ISO 8601 time with zone or a date, not {text!r}") from None
    if moment.tzinfo is None:
        raise ExportUsage(f"{name} needs a zone (e.g. {text}Z): a naive time is ambiguous")
    return moment


def _target(args: argparse.Namespace) -> tuple[str, str]:
    """(grid, segment): `audience NAME` and `audience:NAME` mean the audience's members."""
    if args.grid == "audience":
        if not args.segment:
            raise ExportUsage("name the audience: segstream export audience NAME")
        return f"audience:{args.segment}", "member"
    if args.grid.startswith("audience:") and not args.segment:
        return args.grid, "member"
    if not args.segment:
        raise ExportUsage(f"name a segment of {args.grid!r}: segstream export GRID SEGMENT")
    return args.grid, args.segment


async def run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.read.columns import ColumnError
    from streams.read.reader import NotFound

    try:
        return await _run(settings, args)
    except (ExportUsage, ColumnError, NotFound) as exc:
        print(f"segstream export: {exc}", file=sys.stderr)
        return 2


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.read.reader import NotFound, SegmentReader
    from streams.store.namespaces import require_known

    grid, segment = _target(args)
    reader = await SegmentReader.connect(settings)
    try:
        if (
            settings.namespace
        ):  # named by SEGSTREAM_NAMESPACE: a typo is refused (exit 3), not an empty export
            await require_known(reader.client, settings.key_prefix, settings.namespace)
        segments = reader.grids.get(grid)
        if segments is None:
            raise NotFound(f"unknown grid {grid!r}; known: {', '.join(reader.grids)}")
        if segment not in segments:
            raise NotFound(f"unknown segment {segment!r} of {grid!r}; known: {', '.join(segments)}")
        cursor_file = Path(args.cursor_file) if args.cursor_file else None
        if args.since or args.cursor or cursor_file:
            return await _changes(settings, args, grid, segment, cursor_file, reader)
        if args.until or args.lookback is not None:
            raise ExportUsage("--until and --lookback need --since, --cursor or --cursor-file")
        return await _members(reader, args, grid, segment)
    finally:
        await reader.aclose()


async def _members(reader: Any, args: argparse.Namespace, grid: str, segment: str) -> int:
    from streams.read.columns import catalogue, parse_columns
    from streams.read.export import Selection, encode_rows, member_rows

    columns = parse_columns(args.columns, catalogue(reader.grids), args.declared)
    keys, _, standing = await reader.checked()
    selection = Selection(grid, segment, columns)
    partitions = range(reader.settings.topic_partitions)
    rows = member_rows(reader.client, keys, partitions, selection, standing=standing)
    counted = _Counter(rows)
    with _Output(args.output) as out:
        async for block in encode_rows(counted.chunks(), columns, args.format):
            out.write(block)
    _say(
        args.output,
        f"exported {counted.rows:,} members of {grid} {segment} (namespace {keys.namespace})"
        + (f" to {args.output}" if args.output else ""),
    )
    return 0


class _Counter:
    def __init__(self, chunks: AsyncIterator[list[Any]]) -> None:
        self._chunks = chunks
        self.rows = 0

    async def chunks(self) -> AsyncIterator[list[Any]]:
        async for chunk in self._chunks:
            self.rows += len(chunk)
            yield chunk


async def _changes(
    settings: Settings,
    args: argparse.Namespace,
    grid: str,
    segment: str,
    cursor_file: Path | None,
    reader: SegmentReader,
) -> int:
    from streams.read.changes import CHANGE_COLUMNS, LOOKBACK, changes

    if args.columns or args.declared:
        raise ExportUsage("--columns applies to a members export, not to changes (docs/export.md)")
    if args.cursor and cursor_file:
        raise ExportUsage("give --cursor or --cursor-file, not both")
    cursor = args.cursor
    since = _instant(args.since, "--since")
    if cursor_file is not None and cursor_file.exists():
        try:
            cursor = cursor_file.read_text(encoding="utf-8").strip()  # with --since too: the later start
        except (OSError, UnicodeDecodeError) as exc:
            unread = f"{cursor_file}: cannot be read as a cursor this command wrote ({exc})"
            raise ExportUsage(unread) from None
    elif cursor_file is not None and since is None:
        raise ExportUsage(f"{cursor_file} does not exist yet: give --since for the first sync")
    until = _instant(args.until, "--until")
    lookback = LOOKBACK if args.lookback is None else args.lookback
    if lookback < 0:
        raise ExportUsage("--lookback must be 0 or more")
    # a cursor file's syncs give end states: right whatever the export held (the first), and whatever part
    # of a sync whose cursor was never saved the CRM applied (the rerun): nets assume the CRM at the cursor
    ends = cursor_file is not None
    _, build, _ = await reader.checked()  # the namespace's build, which the cursor names
    found, span = await changes(settings, grid, segment, since, until, cursor, lookback, ends, build)
    with _Output(args.output) as out:
        if args.format == "csv":
            out.write(_csv_line(CHANGE_COLUMNS))
            for change in found:
                out.write(_csv_line(tuple(change.as_dict().values())))
        else:
            for change in found:
                out.write(orjson.dumps(change.as_dict()) + b"\n")
    if cursor_file is not None:  # only once the output is complete: a failed sync is simply run again
        temporary = cursor_file.with_name(cursor_file.name + ".part")
        temporary.write_text(span.cursor() + "\n", encoding="utf-8")
        os.replace(temporary, cursor_file)
    entered = sum(c.change == "entered" for c in found)
    _say(
        args.output,
        f"{entered:,} entered, {len(found) - entered:,} left {grid} {segment}; next cursor: {span.cursor()}",
    )
    return 0


def _csv_line(values: tuple[str | None, ...]) -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue().encode()


def _say(output: str | None, line: str) -> None:
    """The summary: stdout when the rows went to a file, stderr when stdout carries the rows."""
    print(line, file=sys.stdout if output else sys.stderr, flush=True)


class _Output:
    """stdout, or FILE through FILE.part renamed on success (removed on failure)."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.part = self.path.with_name(self.path.name + ".part") if self.path else None
        self._file: IO[bytes] | None = None

    def __enter__(self) -> _Output:
        self._file = self.part.open("wb") if self.part else sys.stdout.buffer
        return self

    def write(self, block: bytes) -> None:
        assert self._file is not None
        self._file.write(block)

    def __exit__(self, kind: object, *rest: object) -> None:
        assert self._file is not None
        if self.part is None or self.path is None:
            self._file.flush()
            return
        self._file.close()
        if kind is None:
            os.replace(self.part, self.path)
        else:
            self.part.unlink(missing_ok=True)
