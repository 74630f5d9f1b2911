"""On a real Redis Cluster: one Kafka partition is one slot, on the node that serves it, and the worker's
result is exactly the pure core's (SEGSTREAM_TEST_REDIS=cluster; `make test` runs it that way)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from segmentation import Definitions
from segmentation.state_mapping import state_to_mapping
from streams.bootstrap import keyspace
from streams.store.connection import sync_client
from streams.store.partitioning import partition_for
from tests.integration.test_worker_history import T0, ev, expected, public, purchase
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    run_worker_until,
    stored_customers,
)
from tests.services import Services, wants_cluster

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not wants_cluster(), reason="about the cluster layout: SEGSTREAM_TEST_REDIS=cluster"),
]

PARTITIONS = 6


def _lines() -> list[bytes]:
    """Twenty customers (spread over the partitions), each with a visit and one or two purchases."""
    lines: list[bytes] = []
    for n in range(20):
        cid = f"cl-{n}"
        lines.append(ev(f"{cid}-v", "web_visit", cid, T0 + timedelta(hours=n)))
        lines.append(purchase(f"{cid}-p1", cid, T0 + timedelta(days=1, hours=n), amount=f"{10 + n}.00"))
        if n % 3 == 0:
            lines.append(purchase(f"{cid}-p2", cid, T0 + timedelta(days=9, hours=n), channel="app"))
    return lines


def test_a_partition_is_one_slot_on_its_node_and_the_states_are_the_pure_cores(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=PARTITIONS)
    lines = _lines()
    want_states, _ = expected(lines, Definitions.default())

    async def scenario() -> None:
        await produce(settings, lines, customer_key)
        await run_worker_until(
            settings, lambda: sum((o or -1) + 1 for o in applied_offsets(settings).values()) == len(lines)
        )

    asyncio.run(scenario())
    stored = stored_customers(settings)
    assert {cid: public(row) for cid, row in stored.items()} == {
        cid: state_to_mapping(s) for cid, s in want_states.items()
    }

    keys = keyspace(settings)
    client: Any = sync_client(settings.redis_url)  # a redis.cluster.RedisCluster (partly untyped)
    try:
        tags = {p: keys.partition_meta(p)[: -len("meta")] for p in range(PARTITIONS)}
        slot_of = {p: client.keyslot(tags[p]) for p in tags}
        owner_of = {p: client.get_node_from_key(tags[p]).name for p in tags}
        customers: dict[int, set[str]] = {}
        metas: set[int] = set()
        for node in client.get_primaries():  # SCAN on each primary alone: a key lives where its slot is
            found: Any = client.scan_iter(match=f"{redis_prefix}*", count=1000, target_nodes=node)
            for raw in found:
                key = raw.decode()
                if "{" not in key:  # a namespace's own keys (definitions, metrics): single-key commands
                    continue
                partition = next(p for p, tag in tags.items() if key.startswith(tag))
                assert client.keyslot(key) == slot_of[partition], key
                assert owner_of[partition] == node.name, key
                if key.startswith(tags[partition] + "c:"):
                    customers.setdefault(partition, set()).add(key[len(tags[partition]) + 2 :])
                metas.update([partition] if key == keys.partition_meta(partition) else [])
        want: dict[int, set[str]] = {}
        for cid in want_states:
            want.setdefault(partition_for(cid, PARTITIONS), set()).add(cid)
        assert customers == want  # every customer once, in its partition's slot, on that slot's node
        assert metas == set(want)
    finally:
        client.close()
