"""A resharding under load loses and doubles nothing: on a real Redis Cluster, two workers consume a fed
stream while the slots of three partitions' hash tags move to other primaries, key batch by key batch, as
`redis-cli --cluster reshard` moves them (their commits meet MOVED, ASK and TRYAGAIN meanwhile). Afterwards
the chaos suite's comparison (tests/chaos/runner.py) must find the worker's namespace equal to a replay
reference key by key, every reference transition id on the topic, and the dead letters as expected."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from redis.crc import key_slot

from streams.store.connection import async_client
from tests.chaos.runner import PARTITIONS, run_scenario
from tests.chaos.scenarios import FAULTS, Scenario, into_batches
from tests.integration.slot_migration import (
    Primary,
    command,
    move_slot,
    owner,
    primaries,
    ranges,
    redis_cli_reshard,
)
from tests.services import Services, forget_keys, wants_cluster

if TYPE_CHECKING:
    from tests.chaos.runner import Ctx

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not wants_cluster(), reason="moves Redis Cluster slots: SEGSTREAM_TEST_REDIS=cluster"),
]
MOVED_PARTITIONS = (0, 1, 2)
Fault = Callable[["Ctx"], Coroutine[Any, Any, None]]


@dataclass
class SharedStack:
    """The services the other tests use, in the shape the chaos runner drives (nothing is killed here)."""

    kafka_bootstrap: str
    redis_url: str

    def ensure_up(self) -> None:
        """Nothing to restart: the resharding kills nothing."""

    def forget(self, key_prefix: str) -> None:
        """The cluster is shared: a run that held leaves none of its keys behind."""
        forget_keys(self.redis_url, key_prefix)


@dataclass
class Moves:
    nodes: list[Primary]
    done: list[tuple[int, Primary, Primary, int]]  # slot, from, to, keys moved
    resharded: list[tuple[Primary, Primary, int]] = field(default_factory=list)  # redis-cli: from, to, slots


def _nodes(url: str) -> list[Primary]:
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    return primaries(host, int(port))


def resharding(moves: Moves) -> Fault:
    async def reshard(ctx: Ctx) -> None:
        """At 1/4, 2/4 and 3/4 of the feed, while the workers work through a burst: one partition's slot
        to the next primary, 5 keys per MIGRATE with 10 ms between batches (a migration of ~1 s)."""
        rng = random.Random(ctx.scenario.seed)
        for k, partition in enumerate(MOVED_PARTITIONS):
            await ctx.feeder.until((k + 1) / (len(MOVED_PARTITIONS) + 1))
            await into_batches(ctx, rng, len(MOVED_PARTITIONS))
            slot = key_slot(f"{ctx.settings.events_topic}:{partition}".encode())
            source = owner(moves.nodes, slot)
            target = moves.nodes[(moves.nodes.index(source) + 1) % len(moves.nodes)]
            keys = await asyncio.to_thread(move_slot, moves.nodes, slot, target, 5, lambda: time.sleep(0.01))
            moves.done.append((slot, source, target, keys))
            ctx.event(f"p{partition} slot {slot}: {keys} keys {source.name} -> {target.name}")

    return reshard


def test_a_key_already_migrated_is_read_through_ask_by_a_busy_async_client(services: Services) -> None:
    """Mid-migration, a key already on the importing node answers ASK at the source; the client must send
    ASKING and the command on one connection, also when the node has several free ones (else MOVED back,
    a ping-pong until "TTL exhausted" for the whole migration)."""
    nodes = _nodes(services.redis_url)
    slot = key_slot(b"doctor-ask")
    source = owner(nodes, slot)
    target = nodes[(nodes.index(source) + 1) % len(nodes)]
    src, dst = source.client(), target.client()
    moved, stays = "test:{doctor-ask}:moved", "test:{doctor-ask}:stays"
    src.set(moved, "on target")
    src.set(stays, "on source")
    try:
        command(dst, "CLUSTER SETSLOT", slot, "IMPORTING", source.node_id)
        command(src, "CLUSTER SETSLOT", slot, "MIGRATING", target.node_id)
        command(src, "MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", moved)

        async def read() -> list[object]:
            client = async_client(services.redis_url)
            try:
                await client.initialize()
                node = client.get_node(host=target.host, port=target.port)  # type: ignore[attr-defined]
                await asyncio.gather(*(client.ping(target_nodes=node) for _ in range(4)))
                assert len(node._free) >= 2  # the importing node has several free connections
                return [await client.get(moved), await client.get(stays), await client.get(moved)]
            finally:
                await client.aclose()

        assert asyncio.run(read()) == [b"on target", b"on source", b"on target"]
    finally:
        move_slot(nodes, slot, target)  # finish the migration, then put the slot back
        move_slot(nodes, slot, source)
        src.delete(stays)
        src.delete(moved)
        src.close()
        dst.close()


@pytest.fixture
def moves(services: Services) -> Iterator[Moves]:
    """The slots moved, put back where they were afterwards; the test's keys removed."""
    found = Moves(_nodes(services.redis_url), [])
    yield found
    for source, target, count in reversed(found.resharded):  # the target's lowest slots: the ones moved
        redis_cli_reshard(found.nodes, target, source, count)
    for slot, source, _, _ in reversed(found.done):
        move_slot(found.nodes, slot, source)


def redis_cli_resharding(moves: Moves) -> Fault:
    async def reshard(ctx: Ctx) -> None:
        """At a third of the feed, during a burst: `redis-cli --cluster reshard` moves the lowest slots of a
        primary, up to the last partition slot it serves, to the primary serving the next range (so the
        moved slots are that one's lowest, which the fixture moves back)."""
        nodes = moves.nodes
        spans = ranges(nodes)
        slots = [key_slot(f"{ctx.settings.events_topic}:{p}".encode()) for p in range(PARTITIONS)]
        by_start = sorted(nodes, key=lambda n: spans[n.name][0][0])
        plans = []
        for source, target in itertools.pairwise(by_start):
            start = spans[source.name][0][0]
            mine = [s for s in slots if owner(nodes, s) == source and s >= start]
            if mine and spans[source.name][0][1] >= max(mine):  # within its first contiguous range
                plans.append((max(mine) - start + 1, source, target, mine))
        count, source, target, moved_slots = min(plans, key=lambda plan: plan[0])
        await ctx.feeder.until(1 / 3)
        await into_batches(ctx, random.Random(ctx.scenario.seed), 1)
        ctx.event(
            f"redis-cli reshard {count} slots {source.name} -> {target.name} (partition slots {moved_slots})"
        )
        moves.resharded.append((source, target, count))
        last = await asyncio.to_thread(redis_cli_reshard, nodes, source, target, count)
        for slot in moved_slots:
            moves.done.append((slot, source, target, -1))
            assert owner(nodes, slot) == target
        ctx.event(f"resharded: {last}")

    return reshard


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("name", "seed", "fault"),
    [("reshard", 11, resharding), ("redis_cli_reshard", 12, redis_cli_resharding)],
    ids=["migrate-3-partition-slots", "redis-cli-reshard"],
)
def test_slot_moves_under_load_lose_and_double_nothing(
    name: str,
    seed: int,
    fault: Callable[[Moves], Fault],
    services: Services,
    moves: Moves,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Slots move while two workers consume (MIGRATE of three partition slots one after another, or
    `redis-cli --cluster reshard` of a range holding one): the result equals the replay reference."""
    monkeypatch.setitem(FAULTS, name, fault(moves))
    scenario = Scenario(name, seed, customers=300, days=365, feed_s=30, workers=2)
    stack = SharedStack(services.kafka_bootstrap, services.redis_url)
    row = asyncio.run(run_scenario(scenario, stack, tmp_path))  # type: ignore[arg-type]  # duck-typed stack
    print(row.line())
    assert row.held, row.line()
    assert row.crashes == [], row.line()  # no worker gave up during a migration: they waited it out
    assert moves.done, row.line()  # at least one partition's slot moved
    if name == "reshard":
        assert len(moves.done) == len(MOVED_PARTITIONS), row.line()
        assert all(keys > 0 for *_, keys in moves.done), moves.done  # each move carried the partition's keys
