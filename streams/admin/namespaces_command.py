"""The namespace subcommands: `namespaces` (list), `promote` and `drop`."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis

from streams.settings import Settings


def add_parsers(sub: Any) -> None:
    n = sub.add_parser("namespaces", help="list namespaces with customer counts and memory")
    n.add_argument("--no-memory", action="store_true", help="skip MEMORY USAGE (faster on big namespaces)")
    p = sub.add_parser("promote", help="make NAME the active namespace (atomic)")
    p.add_argument("name")
    p.add_argument("--allow-empty", action="store_true")
    p.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="after a replay or drop that stopped before its end (never while one runs)",
    )
    d = sub.add_parser("drop", help="delete an inactive namespace (SCAN + UNLINK)")
    d.add_argument("name")


HANDLERS: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {}
"""Filled below: subcommand name -> coroutine, for the CLI's dispatch."""


def _client(settings: Settings) -> aioredis.Redis:
    from streams.bootstrap import redis_client

    return redis_client(settings)


async def _namespaces(settings: Settings, args: argparse.Namespace) -> int:
    from streams.store.namespaces import list_namespaces

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
    """Refused (exit 3) for a namespace built for another partition count than SEGSTREAM_TOPIC_PARTITIONS:
    promoted, every worker following the pointer would exit 3 at once (an outage, not a refusal)."""
    from streams.store.definitions_record import check_partition_count
    from streams.store.keys import KeySpace
    from streams.store.namespaces import check_name, promote

    client = _client(settings)
    try:
        check_name(args.name)
        await check_partition_count(
            client, KeySpace(settings.key_prefix, args.name, settings.events_topic), settings.topic_partitions
        )
        previous = await promote(
            client,
            settings.key_prefix,
            args.name,
            require_keys=not args.allow_empty,
            require_complete=not args.allow_incomplete,
        )
    finally:
        await client.aclose()
    print(
        f"active namespace: {args.name} (was {previous or 'main (default)'}); workers without "
        "SEGSTREAM_NAMESPACE follow it within a second (or exit 3 if it records other definitions); "
        "pinned ones need SEGSTREAM_NAMESPACE changed"
    )
    return 0


async def _drop(settings: Settings, args: argparse.Namespace) -> int:
    from streams.store.keys import KeySpace
    from streams.store.namespace_lease import holder_note, leased
    from streams.store.namespace_writers import refuse_running
    from streams.store.namespaces import drop, require_known

    client = _client(settings)
    try:
        await require_known(client, settings.key_prefix, args.name)
        keys = KeySpace(settings.key_prefix, args.name, settings.events_topic)
        async with leased(client, settings.key_prefix, args.name, holder_note(drop=args.name)):
            await refuse_running(client, keys, "dropping it")
            removed = await drop(client, settings.key_prefix, args.name)  # not under a running replay
    finally:
        await client.aclose()
    print(f"dropped namespace {args.name}: {removed:,} keys unlinked")
    return 0


HANDLERS.update(namespaces=_namespaces, promote=_promote, drop=_drop)
