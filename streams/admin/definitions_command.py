"""Changing what a namespace is segmented by: `definitions diff|apply`, and `calibrate` proposing a change."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis

from streams.settings import Settings

if TYPE_CHECKING:  # the modules themselves are imported lazily, by the commands that use them
    from streams.admin.calibrate import Population
    from streams.admin.definitions_change import Matrix

__all__ = ["add_parsers", "run_calibrate", "run_definitions"]


def add_parsers(sub: Any) -> None:
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
    ap.add_argument("--create", action="store_true", help="apply to a namespace that does not exist yet")
    ap.add_argument("--no-emit", action="store_true", help="do not publish the transitions")
    ap.add_argument("--topic", help="transitions topic (default SEGSTREAM_TRANSITIONS_TOPIC)")
    ap.add_argument(
        "--force",
        action="store_true",
        help="apply although workers reported in the last 15 s (fenced out, they pause their partitions)",
    )
    ap.add_argument("--by", help="who applies, recorded in `definitions log` (default: the login name)")
    lg = dsub.add_parser("log", help="the definitions versions applied to a namespace: when, by whom, moves")
    lg.add_argument("--namespace", help="default: SEGSTREAM_NAMESPACE or the active one")
    lg.add_argument("--format", choices=("text", "json"), default="text")

    c = sub.add_parser("calibrate", help="propose RFM breakpoints, or fit the CLV model (--model clv)")
    c.add_argument("--grid", default="rfm", choices=("rfm",))
    c.add_argument("--model", choices=("clv",), help="fit BG/NBD + Gamma-Gamma on --events (docs/clv.md)")
    c.add_argument("--events", help="--model clv: JSONL event file (.gz too) holding the purchase history")
    c.add_argument(
        "--until", help="--model clv: calibration end, ISO date or date-time (default: last event)"
    )
    c.add_argument("--bins", type=int, default=5)
    c.add_argument("--output", help="new definitions file (default: print the proposal only)")
    c.add_argument("--version", help="version of the new file (default: the current one bumped)")
    c.add_argument("--namespace", help="default: SEGSTREAM_NAMESPACE or the active one")
    c.add_argument("--json", action="store_true", help="print the proposal and the diff as JSON")


async def _namespace(settings: Settings, client: aioredis.Redis, args: argparse.Namespace) -> str:
    """--namespace, SEGSTREAM_NAMESPACE or the active one; an unknown one (a typo?) is refused (exit code
    3) unless `definitions apply --create`."""
    from streams.store.namespaces import active_namespace, check_name, require_known

    given = args.namespace if args.namespace is not None else settings.namespace  # "" is a name, and refused
    name = check_name(given) if given is not None else await active_namespace(client, settings.key_prefix)
    if not getattr(args, "create", False):
        hint = "; to create it, pass --create" if hasattr(args, "create") else ""
        await require_known(client, settings.key_prefix, name, hint)
    return name


async def _keyed_namespace(settings: Settings, client: aioredis.Redis, args: argparse.Namespace) -> str:
    """`_namespace`, refused (PartitionCountError, exit 3) when it records another partition count than
    SEGSTREAM_TOPIC_PARTITIONS: walking partitions 0..count-1, a command would miss customers or look for
    them in other partitions' keys (apply moved only part of the namespace, then recorded the new version)."""
    from streams.store.definitions_record import check_partition_count
    from streams.store.keys import KeySpace

    name = await _namespace(settings, client, args)
    keys = KeySpace(settings.key_prefix, name, settings.events_topic)
    await check_partition_count(client, keys, settings.topic_partitions)
    return name


async def run_definitions(settings: Settings, args: argparse.Namespace) -> int:
    from segmentation import Definitions, DefinitionsError
    from streams.admin import definitions_change as change
    from streams.store.keys import KeySpace

    if args.action == "log":
        return await _log(settings, args)
    try:
        new = Definitions.from_yaml(args.new)
    except (DefinitionsError, OSError) as exc:
        print(f"segstream definitions: {exc}", file=sys.stderr)
        return 2
    from streams.bootstrap import redis_client  # the heavy import only once the file is valid

    client = redis_client(settings)
    try:
        namespace = await _keyed_namespace(settings, client, args)
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
    from streams.admin import definitions_change as change
    from streams.bootstrap import ensure_topics, wait_for_services
    from streams.bootstrap import producer as make_producer
    from streams.progress import Bar
    from streams.store import definitions_log
    from streams.store.namespace_writers import refuse_running
    from streams.topics.publish import publish, transitions_bound

    if not args.force:
        hint = ", or pass --force: they would be fenced out and pause their partitions"
        await refuse_running(client, keys, "applying other definitions", hint)
    topic = args.topic or settings.transitions_topic
    if not args.no_emit:  # Kafka down: one line and exit 4 before anything is written
        await wait_for_services(settings, lambda line: print(f"segstream definitions is {line}"), redis=False)
    if not args.no_emit:  # created as the worker would, and its max.message.bytes read (batch sizes)
        await ensure_topics(settings, [topic])
    producer = None if args.no_emit else make_producer(settings)
    if producer is not None:
        await producer.start()
    try:

        async def send(transitions: list[Any]) -> None:
            assert producer is not None
            items = change.envelope_items(transitions)
            await publish(producer, topic, items, max_batch_bytes=transitions_bound(topic))

        previous = await change.moving_from(client, keys)
        with Bar(f"apply {new.version}", settings.topic_partitions) as bar:
            result = await change.apply(
                client,
                keys,
                settings.topic_partitions,
                new,
                None if producer is None else send,
                definitions_yaml=Path(args.new).read_text(encoding="utf-8"),
                history_size=settings.history_size,
                progress=lambda done, n: bar.update(done, detail=f"{n:,} customers"),
            )
    finally:
        if producer is not None:
            await producer.stop()
    entry = {
        "action": "apply",
        "version": new.version,
        "previous_version": previous,
        "applied_at": definitions_log.now_text(),
        "by": args.by or definitions_log.default_by(),
        "source": args.new,
        "customers": result.matrix.customers,
        "moved": definitions_log.moved_per_grid(result.matrix.cells),
        "written": result.written,
        "transitions": result.transitions,
        "published": producer is not None,
    }
    await definitions_log.record(client, keys, entry)
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


async def _log(settings: Settings, args: argparse.Namespace) -> int:
    """`definitions log`: the recorded entries, as a table or as JSON (a list, oldest first)."""
    from streams.bootstrap import redis_client
    from streams.store import definitions_log
    from streams.store.keys import KeySpace

    client = redis_client(settings)
    try:
        namespace = await _namespace(settings, client, args)
        log = await definitions_log.entries(
            client, KeySpace(settings.key_prefix, namespace, settings.events_topic)
        )
    finally:
        await client.aclose()
    if args.format == "json":
        print(orjson.dumps({"namespace": namespace, "entries": log}, option=orjson.OPT_INDENT_2).decode())
    else:
        print(definitions_log.table(namespace, log))
    return 0


async def run_calibrate(settings: Settings, args: argparse.Namespace) -> int:
    if args.model == "clv":
        from streams.admin import calibrate_clv

        return calibrate_clv.run(settings, args)
    from segmentation import Definitions
    from streams.admin import calibrate
    from streams.admin import definitions_change as change
    from streams.bootstrap import load_definitions, redis_client
    from streams.store.keys import KeySpace

    current = load_definitions(settings)
    client = redis_client(settings)
    try:
        namespace = await _keyed_namespace(settings, client, args)
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
        points = calibrate.breakpoints(current.rfm, proposal, current.minor_exponent)
        new = Definitions.from_mapping(document)
        matrix = await change.diff(client, keys, settings.topic_partitions, new)
    finally:
        await client.aclose()
    _print_calibration(args, namespace, population, points, current.currency, new.version, matrix)
    if args.output:
        note = (
            f"Proposed by `segstream calibrate --grid rfm --bins {args.bins}` from namespace {namespace!r}"
            f" ({len(population.orders)} customers with purchases, recency at {population.reference}).\n"
            "Nothing is applied until `segstream definitions apply` with this file."
        )
        Path(args.output).write_text(calibrate.dump(document, note), encoding="utf-8")
        print(
            f"\nwrote {args.output}; apply with: segstream definitions apply {args.output}",
            file=sys.stderr if args.json else sys.stdout,
        )
    return 0


def _print_calibration(
    args: argparse.Namespace,
    namespace: str,
    population: Population,
    points: dict[str, dict[str, list[str | int]]],
    currency: str,
    version: str,
    matrix: Matrix,
) -> None:
    """Tables for a person (within 100 columns), or one JSON document for a script (`--json`)."""
    from streams.admin import calibrate

    reference = population.reference
    if args.json:
        document = {
            "namespace": namespace,
            "customers": population.customers,
            "customers_with_purchases": len(population.orders),
            "recency_measured_at": None if reference is None else reference.isoformat(),
            "currency": currency,
            "breakpoints": points,
            "new_version": version,
            "diff": orjson.loads(matrix.to_json()),
        }
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    when = "-" if reference is None else reference.strftime("%Y-%m-%d %H:%M:%S UTC")
    print(
        f"namespace {namespace!r}: {len(population.orders):,} of {population.customers:,} customers with"
        f" purchases; recency measured at {when}\n"
    )
    print(calibrate.breakpoints_table(points, currency))
    print(f"\nif applied (version {version!r}):")
    print(matrix.table())
