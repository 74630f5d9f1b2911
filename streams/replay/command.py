"""`segstream replay` on its own: rebuilding a namespace from a log has its own sources, options and split."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from streams.replay.csv_delimiter import delimiter
from streams.replay.time_flags import time_flag
from streams.settings import Settings
from streams.store.keys import KeySpace

__all__ = ["DEFAULT_OUTPUT_DIR", "add_parser", "run"]

# A folder of its own (ignored by git), not the current directory: run from a checkout, replay files would
# otherwise land among the sources, one summary and one rejects file per namespace replayed.
DEFAULT_OUTPUT_DIR = "replays"


def add_parser(sub: Any) -> None:
    r = sub.add_parser(
        "replay",
        help="rebuild state from a log into a fresh namespace",
        description="SOURCE: a JSONL file (.gz or not), a CSV export of orders, .gz or not (--format csv"
        " or a .csv or .csv.gz name), or kafka:TOPIC (from the beginning, or --since).",
    )
    r.add_argument("source")
    r.add_argument("--namespace", required=True, help="target namespace (must be empty unless --force)")
    r.add_argument("--force", action="store_true", help="drop the namespace first if it holds keys")
    r.add_argument(
        "--into-active",
        action="store_true",
        help="build the active namespace itself if it is empty (a first import that nothing reads yet;"
        " readers see it half built until the end); default: refused, replay elsewhere then promote",
    )
    r.add_argument("--format", choices=("auto", "jsonl", "csv"), default="auto")
    r.add_argument("--emit", metavar="TOPIC", help="publish transitions to TOPIC (default: not published)")
    r.add_argument("--since", help="kafka source: first record at or after this ISO time")
    r.add_argument(
        "--output-dir",
        "--out-dir",  # the flag's earlier name, kept as an alias
        dest="output_dir",
        default=DEFAULT_OUTPUT_DIR,
        help="where the summary and rejects files go (default %(default)s, created if missing)",
    )
    r.add_argument("--batch", type=int, default=None, help="events per partition per commit (default 20000)")
    r.add_argument(
        "--processes",
        type=int,
        default=1,
        help="split the partitions across N processes (JSONL and kafka: sources; default 1)",
    )
    r.add_argument(
        "--until",
        metavar="TIME",
        help="RFC 3339 time with offset: at the end, everyone is brought to it (time-driven changes due by"
        " then); refused if before the log's last event (default: the log's last event time)",
    )
    r.add_argument(
        "--reject-future",
        action="store_true",
        help="decide as a live worker: an event dated more than SEGSTREAM_MAX_FUTURE_SKEW_S (default a day)"
        " after its record's time (kafka: source) or after the replay's start (a file: its lines have no"
        " time) is a dead letter; default: the log is applied whatever its dates",
    )
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--by", help="who replays, recorded in `definitions log` (default: the login name)")
    r.add_argument("--definitions", help="definitions YAML (default SEGSTREAM_DEFINITIONS_FILE or packaged)")
    g = r.add_argument_group("CSV import of orders")
    g.add_argument(
        "--map",
        dest="columns",
        help="field=column,...: customer_id, occurred_at (required), amount, total or price (one at"
        " least), order_id, channel, currency, quantity, sku, item_name, coupon, refunded, status",
    )
    g.add_argument(
        "--preset", choices=("shopify", "generic"), help="a known export's mapping (docs/replay.md)"
    )
    g.add_argument("--time-format", help="strptime format of occurred_at (default ISO 8601)")
    g.add_argument("--timezone", default="UTC", help="zone of naive times, e.g. Europe/Paris (default UTC)")
    g.add_argument("--default-channel", default="web", choices=("web", "store", "app", "phone"))
    g.add_argument(
        "--currency",
        "--default-currency",  # the flag's earlier name
        dest="currency",
        help="currency of amounts without a currency column or cell; required without a currency column",
    )
    g.add_argument(
        "--order-window",
        type=int,
        default=10_000,
        help="rows of one order lie within this many rows of its first (default %(default)s)",
    )
    g.add_argument(
        "--hash-customer-id",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="customer id = pseudonym of the column's value, e.g. an email (default: the preset's; off)",
    )
    g.add_argument(
        "--delimiter",
        default=",",
        type=delimiter,
        help="one character between a row's columns; tab as '\\t' or 'tab' (default ',')",
    )
    g.add_argument(
        "--encoding",
        default="utf-8-sig",
        help="the file's text encoding, e.g. cp1252 for an Excel export (default UTF-8, with or without BOM)",
    )
    g.add_argument("--decimal-comma", action="store_true", help="amounts written 1.234,56")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    from segmentation import Definitions
    from streams.bootstrap import load_definitions, redis_client, wait_for_services
    from streams.replay.presets import options_misplaced
    from streams.replay.rebuild import (
        DEFAULT_BATCH,
        ReplayError,
        Source,
        UntilTooEarly,
        replay,
    )
    from streams.store.namespace_lease import holder_note, leased
    from streams.store.namespace_writers import refuse_running
    from streams.store.namespaces import NamespaceError, check_name, prepare_namespace
    from streams.store.tuning import refuse_eviction

    until, since = time_flag("--until", args.until), time_flag("--since", args.since)
    try:  # before Kafka is waited for or a file made
        check_name(args.namespace)
    except NamespaceError as exc:
        print(f"segstream replay: {exc}", file=sys.stderr)
        return 2
    for refused in (until, since):
        if isinstance(refused, str):
            print(f"segstream replay: {refused}", file=sys.stderr)
            return 2
    assert not isinstance(until, str) and not isinstance(since, str)  # refused above; for the type checker
    reject_future = datetime.now(UTC) if args.reject_future else None  # one instant for every share
    if args.source.startswith("kafka:") and (misplaced := options_misplaced(args, csv=False)):
        print(f"segstream replay: {misplaced}", file=sys.stderr)  # before any wait for Kafka
        return 2
    definitions = Definitions.from_yaml(args.definitions) if args.definitions else load_definitions(settings)
    if args.source.startswith("kafka:") or args.emit:  # Kafka down: one line, exit 4, before any write
        await wait_for_services(settings, lambda line: print(f"segstream replay is {line}"), redis=False)
    out_dir = Path(args.output_dir)
    stem = out_dir / f"replay-{args.namespace}"
    source: Source
    extra: dict[str, Any] = {}
    csv_source = None
    file_source = None
    if args.source.startswith("kafka:"):
        from streams.replay.sources import KafkaSource

        source = KafkaSource(args.source[len("kafka:") :], since, settings)
        await source.check()  # a missing topic is refused before the namespace is touched
    else:
        path = Path(args.source)
        if not path.is_file():
            print(f"segstream replay: no such file {path}", file=sys.stderr)
            return 2
        fmt = args.format
        if fmt == "auto":
            csv_name = path.name.lower().removesuffix(".gz").endswith(".csv")
            fmt = "csv" if csv_name or args.preset or args.columns else "jsonl"
        misplaced = options_misplaced(args, fmt == "csv")
        if misplaced is not None:
            print(f"segstream replay: {misplaced}", file=sys.stderr)
            return 2
        if fmt == "csv":
            from streams.replay.csv_orders import CsvMappingError, CsvOrders, read_header
            from streams.replay.presets import csv_options
            from streams.replay.sources import CsvSource

            try:
                options = csv_options(args, read_header(path, args.delimiter, args.encoding))
                csv_source = CsvOrders(path, options, Path(f"{stem}.rejects.csv"))
                csv_source.check_header()  # before anything is written: a retry must not be refused
            except CsvMappingError as exc:
                print(f"segstream replay: {exc}", file=sys.stderr)
                return 2
            source = CsvSource(csv_source, settings.topic_partitions)
        else:
            from streams.replay.sources import FileSource

            file_source = FileSource(path, settings.topic_partitions)
            source = file_source
    if args.processes < 1 or (args.processes > 1 and csv_source is not None):
        print("segstream replay: --processes must be >= 1, and 1 for a CSV import", file=sys.stderr)
        return 2
    out_dir.mkdir(parents=True, exist_ok=True)  # only once the inputs are checked: a refused run makes none
    client = redis_client(settings)
    try:
        await refuse_eviction(client)  # before anything is written (streams/store/tuning.py)
        note = holder_note(replay=args.source)  # the mark, until the end: `promote` refuses the namespace
        async with leased(client, settings.key_prefix, args.namespace, note):  # one rewrite at a time
            target = KeySpace(settings.key_prefix, args.namespace, settings.events_topic)
            await refuse_running(client, target, "replaying into it")
            await prepare_namespace(
                client, settings.key_prefix, args.namespace, args.force, note, args.into_active
            )
            building = target.building()
            try:
                if args.processes > 1:
                    rejects = Path(f"{stem}.rejects.jsonl")
                    summary = await _replay_split(
                        settings, client, args, rejects, until, since, reject_future
                    )
                else:
                    summary = await replay(
                        settings,
                        definitions,
                        client,
                        source,
                        args.namespace,
                        source_name=args.source,
                        rejects_path=Path(f"{stem}.rejects.jsonl"),
                        emit_topic=args.emit,
                        batch_events=args.batch or DEFAULT_BATCH,
                        partitions=None,
                        show_progress=False if args.no_progress else None,
                        until=until,
                        reject_future=reject_future,
                    )
            except UntilTooEarly as exc:
                print(f"segstream replay: {exc}; namespace {args.namespace!r} is incomplete", file=sys.stderr)
                return 2
            except ReplayError as exc:
                print(f"segstream replay: {exc}", file=sys.stderr)
                return 1
            await _record_definitions(settings, client, args, definitions.version, summary)
            await client.delete(building)
    finally:
        await client.aclose()
    extra.update(summary.extra)
    if csv_source is not None:
        extra.update(csv_rows=csv_source.rows, csv_rejected=csv_source.rejected)
        extra.update(csv_purchases=csv_source.purchases, csv_refunds=csv_source.refunds)
        if csv_source.rejected:
            extra["csv_rejects_file"] = str(csv_source.rejects_path)
    if file_source is not None and file_source.blank_lines:
        extra["blank_lines"] = file_source.blank_lines
    summary.extra = extra
    Path(f"{stem}.summary.json").write_bytes(summary.to_json())
    print(summary.text())
    print(f"summary: {stem}.summary.json; promote with: segstream promote {args.namespace}")
    return 0


async def _record_definitions(
    settings: Settings, client: aioredis.Redis, args: argparse.Namespace, version: str, summary: Any
) -> None:
    """The namespace was built under `version`: one entry in its definitions log (docs/replay.md)."""
    from streams.store import definitions_log

    entry = {
        "action": "replay",
        "version": version,
        "previous_version": None,
        "applied_at": definitions_log.now_text(),
        "by": args.by or definitions_log.default_by(),
        "source": args.source,
        "customers": summary.customers,
        "transitions_by_grid": dict(sorted(summary.transitions.items())),
        "transitions": sum(summary.transitions.values()),
        "events": summary.events,
    }
    keys = KeySpace(settings.key_prefix, args.namespace, settings.events_topic)
    await definitions_log.record(client, keys, entry)


async def _replay_split(
    settings: Settings,
    client: aioredis.Redis,
    args: argparse.Namespace,
    rejects: Path,
    until: datetime | None,
    since: datetime | None,
    reject_future: datetime | None,
) -> Any:
    """`replay --processes N` (N > 1): the partitions dealt to N processes (streams.replay.split)."""
    from streams.replay.rebuild import DEFAULT_BATCH
    from streams.replay.split import SourceSpec, replay_split

    if args.source.startswith("kafka:"):
        spec = SourceSpec(topic=args.source[len("kafka:") :], since=since)
    else:
        spec = SourceSpec(path=Path(args.source))
    return await replay_split(
        settings,
        client,
        spec,
        args.namespace,
        processes=args.processes,
        definitions_file=args.definitions,
        rejects_path=rejects,
        emit_topic=args.emit,
        batch_events=args.batch or DEFAULT_BATCH,
        show_progress=False if args.no_progress else None,
        until=until,
        reject_future=reject_future,
    )
