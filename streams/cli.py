"""`segstream` command line: worker, sample, customer, replay, namespaces, promote, drop, definitions
(diff / apply), calibrate, kpis, crosstab. See docs/replay.md and docs/read_side.md."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

from streams import logs, sample_command
from streams.core import choice as core_choice
from streams.settings import Settings, without_password


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.bootstrap import wait_for_services, worker_definitions, worker_runtime
    from streams.store.tuning import memory_advice

    stop_timeout = settings.stop_timeout_s
    worker_definitions(settings)  # a broken file or namespace name is reported before any wait (exit code 2)

    async def main() -> None:
        await wait_for_services(settings, _note("worker"))
        async with worker_runtime(settings) as runtime:
            loop = asyncio.get_running_loop()
            run = asyncio.current_task()
            assert run is not None

            def stop() -> None:
                """Graceful first (the batch in hand is finished and committed); cut short after
                SEGSTREAM_STOP_TIMEOUT_S: whatever was not committed is applied again on restart."""
                if not runtime.worker.stopping():
                    loop.call_later(stop_timeout, run.cancel)
                runtime.worker.stop()

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop)
            resolved = runtime.settings
            namespace = f"{resolved.namespace} ({'pinned' if settings.namespace else 'follows promote'})"
            redis_url = without_password(resolved.redis_url)
            print(
                f"segstream worker: {resolved.events_topic} -> {resolved.transitions_topic} "
                f"(redis {redis_url}, namespace {namespace}, mode {resolved.mode})",
                flush=True,
            )
            core_line = core_choice.describe()  # a stale or failed build says so here, once
            logging.getLogger("segstream").log(
                logging.INFO if core_choice.compiled() else logging.WARNING, core_line
            )
            advice = await memory_advice(runtime.redis)
            if advice:
                logging.getLogger("segstream").warning(advice)
            await runtime.worker.run()

    from streams.worker.loop import FencedStall
    from streams.worker.namespace_follow import DefinitionsMismatch

    try:
        asyncio.run(main())
    except DefinitionsMismatch as exc:
        print(f"segstream worker: {exc}", file=sys.stderr)
        return 3
    except FencedStall as exc:
        print(f"segstream worker: {exc}", file=sys.stderr)
        return 6
    except asyncio.CancelledError:
        print(
            f"segstream worker: no graceful stop within {stop_timeout:g} s (SEGSTREAM_STOP_TIMEOUT_S); "
            "stopped anyway: batches not committed are applied again on restart",
            file=sys.stderr,
        )
        return 5
    return 0


def _customer(settings: Settings, args: argparse.Namespace) -> int:
    """A readable card by default (streams/read/card.py); `--json` the raw hash as before, for scripts."""
    if settings.namespace:  # named by SEGSTREAM_NAMESPACE: a typo is refused (exit 3), not "not found"
        asyncio.run(_require_namespace(settings))
    if not args.json:
        from streams.read.card import customer_card
        from streams.read.reader import BadRequest

        try:
            card = customer_card(settings, args.customer_id)
        except BadRequest as exc:
            print(f"segstream customer: {exc}", file=sys.stderr)
            return 2
        if card is None:
            print(f"customer {args.customer_id!r} not found", file=sys.stderr)
            return 1
        print(card)
        return 0

    from streams.bootstrap import keyspace, sync_redis
    from streams.store.partitioning import partition_for
    from streams.store.replies import TEXT_OPTIONS
    from streams.store.stored_state import readers_view

    keys = keyspace(settings)
    client = sync_redis(settings, **TEXT_OPTIONS)
    first = partition_for(args.customer_id, settings.topic_partitions)
    order = [first] + [p for p in range(settings.topic_partitions) if p != first]
    for partition in order:
        stored: dict[str, str] = client.hgetall(keys.customer(partition, args.customer_id))  # type: ignore[assignment]
        if stored:  # every field decoded from the packed state, as the read client shows them
            row = readers_view(stored, keys.namespace)
            print(
                json.dumps(
                    {"customer_id": args.customer_id, "partition": partition, **dict(sorted(row.items()))},
                    indent=2,
                )
            )
            return 0
    print(f"customer {args.customer_id!r} not found", file=sys.stderr)
    return 1


async def _require_namespace(settings: Settings) -> None:
    from streams.bootstrap import redis_client
    from streams.store.namespaces import require_known

    client = redis_client(settings)
    try:
        await require_known(client, settings.key_prefix, settings.namespace or "")
    finally:
        await client.aclose()


def _note(command: str) -> Callable[[str], None]:
    """Where a command says it waits for a service: stdout, by its start line (stderr is for failures).
    Not "segstream worker: ...": that prefix is the worker's started banner (tests/chaos counts it)."""
    return lambda line: print(f"segstream {command} is {line}", flush=True)


def _api(settings: Settings, args: argparse.Namespace) -> int:
    from streams.read import api

    argv = (["--host", args.host] if args.host else []) + (["--port", str(args.port)] if args.port else [])
    return api.main(argv + (["--no-auth"] if args.no_auth else []))


def _version(settings: Settings, args: argparse.Namespace) -> int:
    from importlib.metadata import version

    print(f"segstream {version('segstream')}\n{core_choice.describe()}")
    return 0


def _api_key(settings: Settings, args: argparse.Namespace) -> int:
    """A new API key: the token once on stdout (give it to the client), the line to configure on stderr."""
    from streams.read.auth import KeyConfigError, new_key

    try:
        token, line = new_key(args.name, args.scope)
    except KeyConfigError as exc:
        print(f"segstream api-key: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(f"add to SEGSTREAM_API_KEYS_FILE: {line}", file=sys.stderr)
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> int:
    from streams.read.dashboard import report

    return report.run(settings, args)


def _admin_parsers(sub: Any) -> None:
    from streams.admin import definitions_command, doctor_command, namespaces_command
    from streams.read import export_command, kpis_command
    from streams.replay import command as replay_command

    replay_command.add_parser(sub)
    doctor_command.add_parser(sub)
    namespaces_command.add_parsers(sub)
    definitions_command.add_parsers(sub)
    export_command.add_parser(sub)
    # declared here: importing streams.read.dashboard.report would load the read side for every command
    r = sub.add_parser("report", help="write the segment views for a period as one HTML (or PDF) file")
    r.add_argument("--output", required=True, help="file to write, e.g. report.html")
    r.add_argument("--from", dest="start", help="first UTC day YYYY-MM-DD (default: to minus 89 days)")
    r.add_argument("--to", dest="end", help="last UTC day YYYY-MM-DD (default: the last day with a flow)")
    r.add_argument("--grid", default="lifecycle", help="grid shown first (the PDF shows this one)")
    r.add_argument("--format", choices=("html", "pdf"), default="html")
    kpis_command.add_parsers(sub)


def _admin(settings: Settings, args: argparse.Namespace) -> int:
    """Operator subcommands (replay, namespaces, promote, drop, definitions, calibrate)."""
    from streams.admin import definitions_command, doctor_command, namespaces_command
    from streams.read import export_command, kpis_command
    from streams.replay import command as replay_command

    handlers = {
        "replay": replay_command.run,
        "doctor": doctor_command.run,
        **namespaces_command.HANDLERS,
        **kpis_command.HANDLERS,
        "definitions": definitions_command.run_definitions,
        "calibrate": definitions_command.run_calibrate,
        "export": export_command.run,
    }
    return asyncio.run(handlers[args.command](settings, args))


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (exit code 2), for every subcommand (subparsers share the class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="segstream", description="Streaming customer segmentation.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    parser.add_argument("--log-format", choices=("text", "json"), help="default SEGSTREAM_LOG_FORMAT (text)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run the streaming updater (configured by SEGSTREAM_* variables)")
    sample_command.add_parser(sub)
    c = sub.add_parser(
        "customer", help="print one customer's segments (since, why), RFM, value, last purchase"
    )
    c.add_argument("customer_id")
    c.add_argument("--json", action="store_true", help="the raw stored hash as JSON (for scripts)")
    a = sub.add_parser(
        "api", help="serve the HTTP read API (profiles, history, counts, KPIs, members, metrics)"
    )
    a.add_argument("--host", help="default SEGSTREAM_API_HOST (127.0.0.1)")
    a.add_argument("--port", type=int, help="default SEGSTREAM_API_PORT (8080)")
    a.add_argument("--no-auth", action="store_true", help="no API keys (refused unless bound to loopback)")
    sub.add_parser("version", help="the version and which core runs: compiled (mypyc) or pure Python (why)")
    k = sub.add_parser("api-key", help="make an API key: token on stdout, its hashed config line on stderr")
    k.add_argument("name")
    k.add_argument("--scope", action="append", required=True, help="segments:read, profiles:read, ...")
    _admin_parsers(sub)
    args = parser.parse_args(argv)
    handler = {
        "worker": _worker,
        "sample": sample_command.run,
        "customer": _customer,
        "api": _api,
        "api-key": _api_key,
        "report": _report,
        "version": _version,
    }.get(args.command, _admin)
    from segmentation.safe_yaml import one_line
    from streams.errors import UNEXPECTED, failure

    settings = None
    log_format = args.log_format or os.environ.get("SEGSTREAM_LOG_FORMAT", "text")  # even if Settings fail
    stderr = sys.stderr
    if log_format == "json":
        sys.stderr = logs.JsonLines(stderr)
    try:
        logs.configure("json" if log_format == "json" else "text")
        settings = Settings()
        with contextlib.suppress(KeyboardInterrupt):
            return handler(settings, args)
    except Exception as exc:  # expected failures: one line, a documented exit code (streams/errors.py)
        if args.debug:
            raise
        code, message = failure(exc, settings)
        line = one_line(f"segstream {args.command}: {message}")
        if code == UNEXPECTED and log_format == "json":  # the traceback in the object, as a record's
            logging.getLogger("segstream").error(line, exc_info=True)
            return code
        if code == UNEXPECTED:  # not an expected failure: the traceback is what a bug report needs
            traceback.print_exc()
        print(line, file=sys.stderr)
        return code
    finally:
        sys.stderr.flush()
        sys.stderr = stderr
    return 130


if __name__ == "__main__":
    sys.exit(main())
