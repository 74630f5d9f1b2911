"""A commit during a slot migration never runs without its ordinal map chunk (commit.lua, "ordinal map keys").

The interleaving is forced, not hoped for: the test moves every key of one partition's slot to another
primary except the `o:0` chunk, as `redis-cli --cluster reshard` leaves it between two MIGRATE batches, then
commits an erasure and a re-creation. Had the chunk been left out of KEYS, Redis would have run the script on
the importing node without it: the erased customer's id would have survived in the map (an erasure not done)
and the new entry would have created the chunk there, so the migration's next MIGRATE stops with BUSYKEY.
Declared, the commit is refused (TRYAGAIN) until the chunk has moved, then lands exactly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.crc import key_slot
from redis.exceptions import ClusterError, TryAgainError

from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.redis_store import RedisStateStore
from tests.contract.test_ordinal_chunks import batch, row, stored_map
from tests.integration.slot_migration import Primary, command, move_slot, owner, primaries
from tests.services import Services, wants_cluster

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not wants_cluster(), reason="moves Redis Cluster slots: SEGSTREAM_TEST_REDIS=cluster"),
]
DUE_US = 10**15  # a due time for every write: the due sorted set exists, as in the worker


def _nodes(url: str) -> list[Primary]:
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    return primaries(host, int(port))


def _half_migrate(source: Primary, target: Primary, slot: int, kept: bytes) -> None:
    """The slot MIGRATING/IMPORTING with every key moved but `kept`."""
    src, dst = source.client(), target.client()
    try:
        command(dst, "CLUSTER SETSLOT", slot, "IMPORTING", source.node_id)
        command(src, "CLUSTER SETSLOT", slot, "MIGRATING", target.node_id)
        listed = command(src, "CLUSTER GETKEYSINSLOT", slot, 1000)
        keys = [k for k in listed if (k if isinstance(k, bytes) else k.encode()) != kept]
        assert len(keys) == len(listed) - 1, f"{kept!r} is not among {listed}"
        command(src, "MIGRATE", target.host, target.port, "", 0, 10_000, "KEYS", *keys)
    finally:
        src.close()
        dst.close()


def _migrate_rest(source: Primary, target: Primary, slot: int, replace: bool = False) -> None:
    """The keys still on the source go to the target (a plain MIGRATE fails with BUSYKEY on a key the
    target already holds, as redis-cli's does)."""
    src = source.client()
    try:
        keys = command(src, "CLUSTER GETKEYSINSLOT", slot, 1000)
        if keys:
            flags = ["REPLACE"] if replace else []
            command(src, "MIGRATE", target.host, target.port, "", 0, 10_000, *flags, "KEYS", *keys)
    finally:
        src.close()


def test_a_commit_waits_for_its_ordinal_chunk_during_a_migration(
    services: Services, redis_prefix: str, unique: str
) -> None:
    nodes = _nodes(services.redis_url)
    keys = KeySpace(redis_prefix.rstrip(":"), "ns", f"chunks-{unique}")
    slot = key_slot(keys.partition_meta(0).encode())
    source = owner(nodes, slot)
    target = nodes[(nodes.index(source) + 1) % len(nodes)]
    ids = [f"c{n}" for n in range(10)]  # ordinals 0-9: all in chunk o:0
    half_migrated: list[int] = []

    async def body() -> dict[str, Any]:
        client = async_client(services.redis_url)
        store = RedisStateStore(client, keys)
        try:
            claim = await store.claim(0)
            first, cache = batch(
                [(cid, None, row("active" if cid == "c9" else "new")) for cid in ids], tuple(ids), DUE_US
            )
            await store.commit(claim, 1, None, first)
            # every key the next commit names exists (else Redis refuses it mid-migration, declared or not)
            second, _ = batch(
                [
                    ("c1", cache["c1"], None),
                    ("c2", cache["c2"], row("active")),
                    ("c3", cache["c3"], row("active")),
                ],
                began=("c2",),
                due_us=DUE_US,
            )
            half_migrated.append(slot)  # before: a failure inside still puts the slot back
            await asyncio.to_thread(_half_migrate, source, target, slot, keys.ordinals(0, 0).encode())
            with pytest.raises((ClusterError, TryAgainError)):
                await store.commit(claim, 2, None, second)
            unwritten = {
                "c1": await client.exists(keys.customer(0, "c1")),
                "seq": await client.hget(keys.partition_meta(0), "seq"),
            }
            await asyncio.to_thread(
                _migrate_rest, source, target, slot
            )  # no BUSYKEY: nothing created o:0 there
            await asyncio.to_thread(move_slot, nodes, slot, target)  # the slot assigned to the target
            await store.commit(claim, 2, None, second)  # the same commit, on one node now
            snap = await store.read_indexes(0)
            return {
                "unwritten": unwritten,
                "map": await stored_map(store, client, keys),
                "members": snap.members,
                "refusals": store.chunk_refusals,
            }
        finally:
            await client.aclose()

    try:
        found = asyncio.run(body())
    finally:  # the shared cluster as found: the slot on its first primary, nothing half migrated
        if half_migrated:
            if owner(nodes, slot) == source:
                _migrate_rest(source, target, slot, replace=True)
                move_slot(nodes, slot, target)
            move_slot(nodes, slot, source)
    assert found["unwritten"] == {"c1": 1, "seq": b"1"}, "the refused commit wrote nothing"
    assert found["map"] == {n: f"c{n}" for n in range(10) if n not in (1, 2)} | {10: "c2"}
    assert found["members"] == {
        ("lifecycle", "new"): {f"c{n}" for n in range(9) if n not in (1, 2, 3)},
        ("lifecycle", "active"): {"c2", "c3", "c9"},
    }
    assert found["refusals"] == 0


def test_a_commit_on_the_source_of_a_migration_never_stops_half_way(
    services: Services, redis_prefix: str, unique: str
) -> None:
    """Mid-migration Redis refuses, inside a script, a command on a key the source node no longer holds: a
    commit that deleted the last entry of a chunk and then wrote the chunk stopped half way ("non local key",
    the worker exited, the ordinal given and not counted). Sets go before deletes, so no chunk is emptied and
    written again. Forced: 129 customers (chunk 1 holds c128 alone), the slot set migrating with nothing moved
    yet, then c128 re-created (its entry leaves ordinal 128 and takes 129, both in chunk 1)."""
    nodes = _nodes(services.redis_url)
    keys = KeySpace(redis_prefix.rstrip(":"), "ns", f"chunks-{unique}")
    slot = key_slot(keys.partition_meta(0).encode())
    source = owner(nodes, slot)
    target = nodes[(nodes.index(source) + 1) % len(nodes)]
    ids = [f"c{n}" for n in range(129)]
    migrating: list[int] = []

    async def body() -> dict[int, str]:
        client = async_client(services.redis_url)
        store = RedisStateStore(client, keys)
        try:
            claim = await store.claim(0)
            first, cache = batch(  # c0 active: every key the second commit names exists
                [(cid, None, row("active" if cid == "c0" else "new")) for cid in ids], tuple(ids), DUE_US
            )
            await store.commit(claim, 1, None, first)
            again, _ = batch([("c128", cache["c128"], row("active"))], began=("c128",), due_us=DUE_US)
            migrating.append(slot)
            src, dst = source.client(), target.client()
            try:
                command(dst, "CLUSTER SETSLOT", slot, "IMPORTING", source.node_id)
                command(src, "CLUSTER SETSLOT", slot, "MIGRATING", target.node_id)
            finally:
                src.close()
                dst.close()
            await store.commit(claim, 2, None, again)  # every key still on the source: it runs there
            return await stored_map(store, client, keys)
        finally:
            await client.aclose()

    try:
        found = asyncio.run(body())
    finally:
        if migrating:  # finish the migration, then put the slot back
            move_slot(nodes, slot, target)
            move_slot(nodes, slot, source)
    assert found == {n: f"c{n}" for n in range(128)} | {129: "c128"}
