"""A SCAN of one Redis Cluster slot's keys that stays whole while the slot migrates to another primary.

Why: SCAN is not redirected like a key command; it walks one node. While a slot is MIGRATING, MIGRATE has
moved some of its keys to the IMPORTING node and the rest are still on the source, so a walk of the source
alone misses the moved ones. A key of a migrating slot only ever moves source -> target, so the source
walked in full, then the target walked in full (keys seen on the source skipped) misses nothing: a key not
seen on the source had left it before the source's cursor passed it, so it is on the target by then.
The slot's state is asked of the nodes themselves (CLUSTER NODES: `[slot->-id]` on the source,
`[slot-<-id]` on the target), not taken from the client's slot map, and asked again after each node's walk:
a migration that begins, or a slot that changes hands, in the middle of a walk that could not cover it
raises SlotMigrating (naming the slot) instead of returning a partial walk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import redis.exceptions
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

_HOPS = 3  # a stale slot map names the old owner, which names the new one: one hop, a few for safety


class SlotMigrating(redis.exceptions.ConnectionError):
    """A slot changed hands in a way one walk cannot cover: run it again (transient, like an outage: the
    API answers 503, the CLI exits 3 with this line)."""

    exit_code = 3

    def __init__(self, slot: int, what: str, during: str = "the walk of its keys") -> None:
        super().__init__(f"Redis Cluster slot {slot} {what} during {during}: run it again")


@dataclass(frozen=True)
class SlotView:
    """One node's view of one slot: whether it serves it, where it migrates it, who serves it otherwise."""

    serves: bool
    migrating_to: str | None  # "host:port" of the importing node while this node migrates the slot
    owner: str | None  # "host:port" of the node serving the slot, as this node sees it


async def walk_slot(client: AsyncRedisCluster, match: str, slot_key: str, count: int) -> AsyncIterator[Any]:
    """Every key matching `match` (keys of `slot_key`'s slot) once: the serving node's, then, while the slot
    migrates, the importing node's."""
    await client.initialize()  # the slot map: a client that sent nothing yet has none
    slot = client.keyslot(slot_key)
    source, before = await _serving(client, client.get_node_from_key(slot_key), slot)
    seen: set[Any] | None = set() if before.migrating_to else None  # memory only while migrating
    async for key in client.scan_iter(match=match, count=count, target_nodes=source):
        if seen is not None:
            seen.add(key)
        yield key
    after = await _view(client, source, slot)
    if before.migrating_to is None:
        if after != before:
            raise SlotMigrating(slot, f"began to move from {source.name}")
        return
    if after.migrating_to != before.migrating_to and after.owner != before.migrating_to:
        raise SlotMigrating(slot, f"moved from {source.name} elsewhere than {before.migrating_to}")
    target = _node(client, before.migrating_to, slot)
    assert seen is not None
    async for key in client.scan_iter(match=match, count=count, target_nodes=target):
        if key not in seen:
            seen.add(key)
            yield key
    if (await _view(client, target, slot)).migrating_to is not None:
        raise SlotMigrating(slot, f"began to move on from {target.name}")


async def _serving(
    client: AsyncRedisCluster, node: ClusterNode | None, slot: int
) -> tuple[ClusterNode, SlotView]:
    """The node serving `slot` as it sees itself (the client's map may be stale), and its view."""
    for _ in range(_HOPS):
        if node is None:
            break
        view = await _view(client, node, slot)
        if view.serves:
            return node, view
        if view.owner is None:
            break
        node = _node(client, view.owner, slot)
    raise SlotMigrating(slot, "had no node that serves it")


async def _view(client: AsyncRedisCluster, node: ClusterNode, slot: int) -> SlotView:
    """`node`'s own CLUSTER NODES, read for `slot` (migration marks appear on the node's own line only)."""
    nodes: dict[str, dict[str, Any]] = await client.execute_command("CLUSTER NODES", target_nodes=node)
    address = {info["node_id"]: name for name, info in nodes.items()}
    owner, serves, migrating_to = None, False, None
    for name, info in nodes.items():
        mine = "myself" in info["flags"].split(",")
        if any(int(r[0]) <= slot <= int(r[-1]) for r in info["slots"]):
            owner, serves = name, serves or mine
        for move in info["migrations"] if mine else ():
            if int(move["slot"]) == slot and move["state"] == "migrating":
                migrating_to = address.get(move["node_id"], move["node_id"])
    return SlotView(serves, migrating_to, owner)


def _node(client: AsyncRedisCluster, name: str, slot: int) -> ClusterNode:
    host, _, port = name.rpartition(":")
    node = client.get_node(host=host, port=int(port)) if port.isdigit() else None
    if node is None:
        raise SlotMigrating(slot, f"moved to a node this client does not know ({name})")
    return node
