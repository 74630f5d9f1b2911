"""The operator subcommands of `segstream`: replay, namespaces, promote, drop, definitions, calibrate."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from streams.settings import Settings


def add_parsers(sub: Any) -> None:
    r = sub.add_parser(
        "replay",
        help="rebuild state from a log into a fresh namespace",
        description="SOURCE: a JSONL file (.gz or not), a CSV export of orders (--format csv or a .csv"
        " name), or kafka:TOPIC (from the beginning, or --since).",
    )
    r.add_argument("source")
    r.add_argument("--namespace", required=True, help="target namespace (must be empty unless --force)")
    r.add_argument("--force", action="store_true", help="drop the namespace first if it holds keys")
    r.add_argument("--format", choices=("auto", "jsonl", "csv"), default="auto")
    r.add_argument("--emit", metavar="TOPIC", help="publish transitions to TOPIC (default: not published)")
    r.add_argument("--since", help="kafka source: first record at or after this ISO time")
    r.add_argument("--out-dir", default=".", help="where the summary and rejects files go (default .)")
    r.add_argument("--batch", type=int, default=None, help="events per partition per commit (default 20000)")
    r.add_argument(
        "--processes",
        type=int,
        default=1,
        help="split the partitions across N processes (JSONL and kafka: sources; default 1)",
    )
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--definitions", help="definitions YAML (default SEGSTREAM_DEFINITIONS_FILE or packaged)")
    g = r.add_argument_group("CSV import of orders")
    g.add_argument(
        "--map",
        dest="columns",
        help="field=column,...: customer_id, occurred_at, amount"
        " (required), order_id, channel, currency, quantity",
    )
    g.add_argument("--time-format", help="strptime format of occurred_at (default ISO 8601)")
    g.add_argument("--timezone", default="UTC", help="zone of naive times, e.g. Europe/Paris (default UTC)")
    g.add_argument("--default-channel", default="web", choices=("web", "store", "app", "phone"))
    g.add_argument("--default-currency", default="EUR")
    g.add_argument("--delimiter", default=",")
    g.add_argument("--decimal-comma", action="store_true", help="amounts written 1.234,56")

    n = sub.add_parser("namespaces", help="list namespaces with customer counts and memory")
    n.add_argument("--no-memory", action="store_true", help="skip MEMORY USAGE (faster on big namespaces)")
    p = sub.add_parser("promote", help="make NAME the active namespace (atomic)")
    p.add_argument("name")
    p.add_argument("--allow-empty", action="store_true")
    d = sub.add_parser("drop", help="delete an inactive namespace (SCAN + UNLINK)")
    d.add_argument("name")

    defs = sub.add_parser("definitions", help="shadow diff or apply new definitions from stored state")
    dsub = defs.add_subparsers(dest="action", required=True)
    diff = dsub.add_parser("diff", help="who would move between which segments, per grid")
    diff.add_argument("new")
    diff.add_argument("--csv", help="write the matrix as CSV (grid, from, to, customers)")
    diff.add_argument("--json", help="write the matrix as JSON")
    diff.add_argument("--namespace", help="default: SEGSTREAM_NAMESPACE or the active one")
    diff.add_argument("--all", action="store_true", help="print grids without change too")
    ap = dsub.add_parser("apply", help="re-segment every customer, write the new version, emit transitions")
    ap.add_argument("new")
    ap.add_argument("--namespace", help="default: SEGSTREAM_NAMESPACE or the active one")
    ap.add_argument("--no-emit", action="store_true", help="do not publish the transitions")
    ap.add_argument("--topic", help="transitions topic (default SEGSTREAM_TRANSITIONS_TOPIC)")

    c = sub.add_parser("calibrate", help="propose RFM breakpoints from the population's quantiles")
    c.add_argument("--grid", default="rfm", choices=("rfm",))
    c.add_argument("--bins", type=int, default=5)
    c.add_argument("--output", help="new definitions file (default: print the proposal only)")
    c.add_argument("--version", help="version of the new file (default: the current one bumped)")
    c.add_argument("--namespace", help="default: SEGSTREAM_NAMESPACE or the active one")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.namespaces import NamespaceError

    handlers = {
        "replay": _replay,
        "namespaces": _namespaces,
        "promote": _promote,
        "drop": _drop,
        "definitions": _definitions,
        "calibrate": _calibrate,
    }
    try:
        return asyncio.run(handlers[args.command](settings, args))
    except NamespaceError as exc:
        print(f"segstream {args.command}: {exc}", file=sys.stderr)
        return 2


def _client(settings: Settings) -> aioredis.Redis:
    from streams.bootstrap import redis_client

    return redis_client(settings)


async def _namespace(settings: Settings, client: aioredis.Redis, explicit: str | None) -> str:
    from streams.namespaces import active_namespace, check_name

    return check_name(explicit or settings.namespace or await active_namespace(client, settings.key_prefix))


async def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from segmentation import Definitions
    from streams.bootstrap import load_definitions
    from streams.replay import DEFAULT_BATCH, ReplayError, Source, prepare_namespace, replay

    definitions = Definitions.from_yaml(args.definitions) if args.definitions else load_definitions(settings)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"replay-{args.namespace}"
    source: Source
    extra: dict[str, Any] = {}
    csv_source = None
    file_source = None
    if args.source.startswith("kafka:"):
        from streams.sources import KafkaSource

        since = datetime.fromisoformat(args.since.replace("Z", "+00:00")) if args.since else None
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        source = KafkaSource(args.source[len("kafka:") :], since, settings)
    else:
        path = Path(args.source)
        if not path.is_file():
            print(f"segstream replay: no such file {path}", file=sys.stderr)
            return 2
        fmt = args.format
        if fmt == "auto":
            fmt = "csv" if path.name.lower().removesuffix(".gz").endswith(".csv") else "jsonl"
        if fmt == "csv":
            from streams.csv_orders import CsvMappingError, CsvOptions, CsvOrders, parse_mapping
            from streams.sources import CsvSource

            if not args.columns:
                print("segstream replay: a CSV source needs --map (see --help)", file=sys.stderr)
                return 2
            try:
                options = CsvOptions(
                    parse_mapping(args.columns),
                    time_format=args.time_format,
                    timezone=args.timezone,
                    default_channel=args.default_channel,
                    default_currency=args.default_currency.upper(),
                    delimiter=args.delimiter,
                    decimal_comma=args.decimal_comma,
                )
            except CsvMappingError as exc:
                print(f"segstream replay: {exc}", file=sys.stderr)
                return 2
            csv_source = CsvOrders(path, options, Path(f"{stem}.rejects.csv"))
            source = CsvSource(csv_source, settings.topic_partitions)
        else:
            from streams.sources import FileSource

            file_source = FileSource(path, settings.topic_partitions)
            source = file_source
    if args.processes < 1 or (args.processes > 1 and csv_source is not None):
        print("segstream replay: --processes must be >= 1, and 1 for a CSV import", file=sys.stderr)
        return 2
    client = _client(settings)
    try:
        await prepare_namespace(client, settings.key_prefix, args.namespace, args.force)
        try:
            if args.processes > 1:
                summary = await _replay_split(settings, client, args, Path(f"{stem}.rejects.jsonl"))
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
                )
        except ReplayError as exc:
            print(f"segstream replay: {exc}", file=sys.stderr)
            return 1
    finally:
        await client.aclose()
    extra.update(summary.extra)
    if csv_source is not None:
        extra.update(csv_rows=csv_source.rows, csv_rejected=csv_source.rejected)
        if csv_source.rejected:
            extra["csv_rejects_file"] = str(csv_source.rejects_path)
    if file_source is not None and file_source.blank_lines:
        extra["blank_lines"] = file_source.blank_lines
    summary.extra = extra
    Path(f"{stem}.summary.json").write_bytes(summary.to_json())
    print(summary.text())
    print(f"summary: {stem}.summary.json; promote with: segstream promote {args.namespace}")
    return 0


async def _replay_split(
    settings: Settings, client: aioredis.Redis, args: argparse.Namespace, rejects: Path
) -> Any:
    """`replay --processes N` (N > 1): the partitions dealt to N processes (streams.replay_split)."""
    from streams.replay import DEFAULT_BATCH
    from streams.replay_split import SourceSpec, replay_split

    if args.source.startswith("kafka:"):
        since = datetime.fromisoformat(args.since.replace("Z", "+00:00")) if args.since else None
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
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
    )


async def _namespaces(settings: Settings, args: argparse.Namespace) -> int:
    from streams.namespaces import list_namespaces

    client = _client(settings)
    try:
        infos = await list_namespaces(client, settings.key_prefix, with_memory=not args.no_memory)
    finally:
        await client.aclose()
    print(f"{'':2}{'namespace':<24}{'customers':>12}{'keys':>12}{'memory':>12}")
    for info in infos:
        memory = "-" if info.memory_bytes is None else f"{info.memory_bytes / 1048576:.1f} MiB"
        mark = "* " if info.active else "  "
        print(f"{mark}{info.name:<24}{info.customers:>12,}{info.keys:>12,}{memory:>12}")
    print("(* active)")
    return 0


async def _promote(settings: Settings, args: argparse.Namespace) -> int:
    from streams.namespaces import promote

    client = _client(settings)
    try:
        previous = await promote(client, settings.key_prefix, args.name, require_keys=not args.allow_empty)
    finally:
        await client.aclose()
    print(f"active namespace: {args.name} (was {previous or 'main (default)'}); restart the workers")
    return 0


async def _drop(settings: Settings, args: argparse.Namespace) -> int:
    from streams.namespaces import drop

    client = _client(settings)
    try:
        removed = await drop(client, settings.key_prefix, args.name)
    finally:
        await client.aclose()
    print(f"dropped namespace {args.name}: {removed:,} keys unlinked")
    return 0


async def _definitions(settings: Settings, args: argparse.Namespace) -> int:
    from segmentation import Definitions, DefinitionsError
    from streams import definitions_change as change
    from streams.keys import KeySpace

    try:
        new = Definitions.from_yaml(args.new)
    except (DefinitionsError, OSError) as exc:
        print(f"segstream definitions: {exc}", file=sys.stderr)
        return 2
    client = _client(settings)
    try:
        namespace = await _namespace(settings, client, args.namespace)
        keys = KeySpace(settings.key_prefix, namespace, settings.events_topic)
        if args.action == "diff":
            matrix = await change.diff(client, keys, settings.topic_partitions, new)
            print(f"namespace {namespace!r}, new definitions version {new.version!r}")
            print(matrix.table(moves_only_grids=not args.all))
            if args.csv:
                matrix.write_csv(Path(args.csv))
            if args.json:
                Path(args.json).write_bytes(matrix.to_json())
            return 0
        return await _apply(settings, args, client, keys, new)
    finally:
        await client.aclose()


async def _apply(
    settings: Settings, args: argparse.Namespace, client: aioredis.Redis, keys: Any, new: Any
) -> int:
    from streams import definitions_change as change
    from streams.bootstrap import producer as make_producer
    from streams.publish import publish

    topic = args.topic or settings.transitions_topic
    producer = None if args.no_emit else make_producer(settings)
    if producer is not None:
        await producer.start()
    try:

        async def send(transitions: list[Any]) -> None:
            assert producer is not None
            await publish(producer, topic, change.envelope_items(transitions))

        result = await change.apply(
            client,
            keys,
            settings.topic_partitions,
            new,
            None if producer is None else send,
            definitions_yaml=Path(args.new).read_text(encoding="utf-8"),
        )
    finally:
        if producer is not None:
            await producer.stop()
    print(
        f"namespace {keys.namespace!r}: {result.matrix.customers:,} customers, {result.written:,} written,"
        f" {result.transitions:,} transitions" + ("" if producer is None else f" published to {topic}")
    )
    for grid, n in sorted(result.by_grid.items()):
        print(f"  {grid:<32}{n:>10,}")
    if result.transitions == 0 and result.written == 0:
        print("nothing to do: every customer is at this definitions version already")
    print(f"now restart the workers with SEGSTREAM_DEFINITIONS_FILE={args.new}")
    return 0


async def _calibrate(settings: Settings, args: argparse.Namespace) -> int:
    from segmentation import Definitions
    from streams import calibrate
    from streams import definitions_change as change
    from streams.bootstrap import load_definitions
    from streams.keys import KeySpace

    current = load_definitions(settings)
    client = _client(settings)
    try:
        namespace = await _namespace(settings, client, args.namespace)
        keys = KeySpace(settings.key_prefix, namespace, settings.events_topic)
        population = await calibrate.read_population(
            client, keys, settings.topic_partitions, current.minor_exponent
        )
        try:
            proposal = calibrate.propose(population, args.bins)
        except ValueError as exc:
            print(f"segstream calibrate: {exc}", file=sys.stderr)
            return 2
        document = calibrate.new_document(
            calibrate.base_document(settings.definitions_file), proposal, args.version
        )
        print(
            f"{len(population.orders):,} of {population.customers:,} customers with purchases;"
            f" recency measured at {population.reference}"
        )
        for name in ("recency_days", "frequency_orders", "monetary"):
            print(f"  {name:<18} {list(getattr(current.rfm, name))!s:<36} -> {proposal[name]}")
        new = Definitions.from_mapping(document)
        matrix = await change.diff(client, keys, settings.topic_partitions, new)
    finally:
        await client.aclose()
    print(f"\nif applied (version {new.version!r}):")
    print(matrix.table())
    if args.output:
        note = (
            f"Proposed by `segstream calibrate --grid rfm --bins {args.bins}` from namespace {namespace!r}"
            f" ({len(population.orders)} customers with purchases, recency at {population.reference}).\n"
            "Nothing is applied until `segstream definitions apply` with this file."
        )
        Path(args.output).write_text(calibrate.dump(document, note), encoding="utf-8")
        print(f"\nwrote {args.output}; apply with: segstream definitions apply {args.output}")
    return 0
