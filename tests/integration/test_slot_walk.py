"""A partition walk (`scan_slot`: read_indexes, definitions apply, the dashboard's preview, replay's count)
on a real Redis Cluster while the partition's slot is half migrated: some of its keys MIGRATEd to the
importing node, the rest still on the source. The walk must yield every key exactly once; a migration that
begins in the middle of a walk must raise SlotMigrating, never end the walk short. Each test puts the slot
back on its owner and deletes its keys, whatever happens: the cluster is shared."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from redis.crc import key_slot

from streams.store.connection import async_client, scan_slot
from streams.store.keys import KeySpace
from streams.store.slot_walk import SlotMigrating
from tests.integration.slot_migration import Primary, command, move_slot, owner, primaries
from tests.services import Services, wants_cluster

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(
        not wants_cluster(), reason="migrates a Redis Cluster slot: SEGSTREAM_TEST_REDIS=cluster"
    ),
]
PARTITION = 3
CUSTOMERS = 60


@dataclass
class Slot:
    """One partition's slot of a private namespace, filled with CUSTOMERS customer keys and its meta key."""

    url: str
    keys: KeySpace
    slot: int
    nodes: list[Primary]
    source: Primary
    target: Primary
    customer_keys: list[str]

    def begin_migration(self, moved: list[str]) -> None:
        """SETSLOT IMPORTING on the target, MIGRATING on the source, then MIGRATE `moved` (not all)."""
        src, dst = self.source.client(), self.target.client()
        try:
            command(dst, "CLUSTER SETSLOT", self.slot, "IMPORTING", self.source.node_id)
            command(src, "CLUSTER SETSLOT", self.slot, "MIGRATING", self.target.node_id)
            command(src, "MIGRATE", self.target.host, self.target.port, "", 0, 10_000, "KEYS", *moved)
        finally:
            src.close()
            dst.close()

    def where(self) -> tuple[int, int]:
        """(keys of the slot on the source, on the target): CLUSTER COUNTKEYSINSLOT, asked of each node."""
        counts = []
        for node in (self.source, self.target):
            c = node.client()
            try:
                counts.append(int(command(c, "CLUSTER COUNTKEYSINSLOT", self.slot)))
            finally:
                c.close()
        return counts[0], counts[1]


@pytest.fixture
def slot(services: Services) -> Iterator[Slot]:
    unique = uuid.uuid4().hex[:12]
    keys = KeySpace(f"test:{unique}", "walk", f"test-{unique}-events")
    host, port = services.redis_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    nodes = primaries(host, int(port))
    number = key_slot(keys.partition_meta(PARTITION).encode())
    source = owner(nodes, number)
    target = nodes[(nodes.index(source) + 1) % len(nodes)]
    customer_keys = [keys.customer(PARTITION, f"c{i:03d}") for i in range(CUSTOMERS)]
    src = source.client()
    for key in customer_keys:
        src.hset(key, "clock", "1")
    src.hset(keys.partition_meta(PARTITION), "offset", "7")  # same slot, not a customer: never walked
    try:
        yield Slot(services.redis_url, keys, number, nodes, source, target, customer_keys)
    finally:
        move_slot(nodes, number, target)  # finish the migration (also a half-begun one), then move it back
        move_slot(nodes, number, source)
        src.delete(*customer_keys, keys.partition_meta(PARTITION))
        src.close()
        assert owner(nodes, number) == source


def walk(
    s: Slot,
    count: int = 1000,
    between: Callable[[], object] | None = None,
    mapped: Callable[[], object] | None = None,
) -> list[str]:
    """The keys `scan_slot` yields; `between` runs after the first, `mapped` once the client has its map."""

    async def run() -> list[str]:
        client = async_client(s.url)
        try:
            await client.initialize()
            if mapped is not None:
                await asyncio.to_thread(mapped)
            found = []
            pattern, slot_key = s.keys.customer_pattern(PARTITION), s.keys.partition_meta(PARTITION)
            async for raw in scan_slot(client, pattern, slot_key, count):
                found.append(raw.decode())
                if between is not None and len(found) == 1:
                    await asyncio.to_thread(between)
            return found
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_a_walk_of_a_half_migrated_slot_yields_every_key_once(slot: Slot) -> None:
    moved = slot.customer_keys[::3]  # 20 of 60 on the importing node, 40 still on the source
    slot.begin_migration(moved)
    assert slot.where() == (CUSTOMERS - len(moved) + 1, len(moved))  # + 1: the meta key
    found = walk(slot)
    assert len(found) == len(set(found))
    assert sorted(found) == slot.customer_keys


def test_a_walk_of_a_half_migrated_slot_in_small_scan_steps_yields_every_key_once(slot: Slot) -> None:
    """COUNT 5: many SCAN round trips on each node (the cursor logic of both walks, not one reply each)."""
    slot.begin_migration(slot.customer_keys[1::2])
    found = walk(slot, count=5)
    assert len(found) == len(set(found))
    assert sorted(found) == slot.customer_keys


def test_a_migration_that_begins_mid_walk_is_refused_not_returned_short(slot: Slot) -> None:
    """The slot was stable when the walk began; after its first key, keys move: the walk cannot know which
    of the moved keys it already gave, so it must raise, naming the slot."""
    with pytest.raises(SlotMigrating, match=f"slot {slot.slot} began to move from {slot.source.name}"):
        walk(slot, between=lambda: slot.begin_migration(slot.customer_keys[:30]))


def test_a_walk_with_a_slot_map_from_before_the_slot_moved_walks_its_new_owner(slot: Slot) -> None:
    """The client learnt the map, then the whole slot moved: SCAN is not redirected, so the node the map
    names has none of the keys; the walk asks the nodes who serves the slot now."""
    found = walk(slot, mapped=lambda: move_slot(slot.nodes, slot.slot, slot.target))
    assert slot.where() == (0, CUSTOMERS + 1)
    assert sorted(found) == slot.customer_keys
