"""`segstream doctor`: the slot balance of a namespace (streams/store/slot_balance.py) as a table or JSON,
a warning when one Redis node holds more than its share or Redis may evict (or has evicted) keys
(streams/store/tuning.py), and exit code 3 with `--strict` then."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import redis.asyncio as aioredis

from streams.settings import Settings
from streams.store.keys import KeySpace
from streams.store.slot_balance import Balance

SKEWED = 3  # streams/errors.py: refused by a guard (here: the balance guard of --strict)


def add_parser(sub: Any) -> None:
    d = sub.add_parser(
        "doctor", help="per Redis node: partitions, customers, memory; warn when one node holds too much"
    )
    d.add_argument("--namespace", help="default: SEGSTREAM_NAMESPACE, else the active namespace")
    d.add_argument(
        "--max-skew", type=_percent, default=0.25, help="warn above mean + this (percent, default 25)"
    )
    d.add_argument("--strict", action="store_true", help="exit 3 when a warning is printed")
    d.add_argument("--exact", action="store_true", help="memory by SCAN of every key (slow) not a sample")
    d.add_argument("--json", action="store_true", help="the report as JSON (for scripts)")


def _percent(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not math.isfinite(value) or value < 0:  # nan compares false with every skew: --strict would pass
        raise argparse.ArgumentTypeError(f"a skew limit is a finite percentage, not negative: {text!r}")
    return value / 100


async def run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.bootstrap import load_definitions, redis_client
    from streams.store.definitions_record import check_partition_count
    from streams.store.namespaces import active_namespace, check_name, require_known
    from streams.store.slot_balance import measure
    from streams.store.tuning import eviction_warnings, server_info

    definitions = load_definitions(settings)
    client = redis_client(settings)
    try:
        name = settings.namespace if args.namespace is None else args.namespace  # "" is refused
        if name is not None:  # named: a typo is refused (exit 3), not reported as an empty namespace
            await require_known(client, settings.key_prefix, check_name(name))
        else:
            name = await active_namespace(client, settings.key_prefix)
        keys = KeySpace(settings.key_prefix, name, settings.events_topic)
        # keyed by partition: with another count it would measure some partitions, or none, and call that
        # balanced (exit 3, like the reader and the API)
        await check_partition_count(client, keys, settings.topic_partitions)
        balance = await measure(
            client, keys, settings.topic_partitions, definitions, args.max_skew, exact=args.exact
        )
        if not any(p.customers for p in balance.partitions) and not await _committed(client, keys, balance):
            balance.warnings.append(
                f"namespace {name!r} holds nothing for topic {keys.topic!r} (no partition ever committed): "
                "nothing to balance, or another SEGSTREAM_EVENTS_TOPIC or SEGSTREAM_KEY_PREFIX than the "
                "workers'"
            )
        balance.warnings.extend(eviction_warnings(await server_info(client)))
    finally:
        await client.aclose()
    print(json.dumps(balance.as_json(), indent=2) if args.json else table(balance))
    for warning in balance.warnings:
        print(f"segstream doctor: warning: {warning}", file=sys.stderr)
    return SKEWED if args.strict and balance.warnings else 0


async def _committed(client: aioredis.Redis, keys: KeySpace, balance: Balance) -> bool:
    """Whether any partition of the topic was ever committed in the namespace (its meta hash exists): an
    empty report is then a fact, not the wrong topic or key prefix measured."""
    for p in balance.partitions:  # one key at a time: on a cluster the metas live in different slots
        if await client.exists(keys.partition_meta(p.partition)):
            return True
    return False


def _mib(n: int) -> str:
    return f"{n / 1048576:.2f} MiB"


def table(balance: Balance) -> str:
    where = "Redis Cluster" if balance.cluster else "single Redis server"
    lines = [
        f"namespace {balance.namespace}, topic {balance.topic}, {where}; memory: {balance.memory}",
        "",
        f"{'partition':>9}  {'slot':>5}  {'node':<21}{'customers':>12}{'memory':>14}",
    ]
    for p in balance.partitions:
        lines.append(
            f"{p.partition:>9}  {p.slot:>5}  {p.node:<21}{p.customers:>12,}{_mib(p.memory_bytes):>14}"
        )
    lines += ["", f"{'node':<21}{'partitions':>11}{'customers':>12}{'share':>7}{'memory':>14}{'share':>7}"]
    for n in balance.nodes:
        lines.append(
            f"{n.node:<21}{n.partitions:>11}{n.customers:>12,}{n.customer_share:>7.0%}"
            f"{_mib(n.memory_bytes):>14}{n.memory_share:>7.0%}"
        )
    lines += [
        "",
        f"skew (largest node over the mean): customers {balance.customer_skew:+.0%}, "
        f"memory {balance.memory_skew:+.0%} (limit {balance.max_skew:.0%})",
    ]
    return "\n".join(lines)
