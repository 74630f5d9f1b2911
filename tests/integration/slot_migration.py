"""Move one Redis Cluster slot to another primary the way `redis-cli --cluster reshard` does, key batch by key
batch (CLUSTER SETSLOT IMPORTING / MIGRATING, MIGRATE, SETSLOT NODE), so a test can move a given slot: the
slot of one Kafka partition's hash tag. Clients see MOVED and ASK meanwhile, as during a real resharding."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis


@dataclass(frozen=True)
class Primary:
    node_id: str
    host: str
    port: int

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, socket_timeout=10)


def command(client: redis.Redis, *args: Any) -> Any:
    """One raw command (redis-py types `execute_command` loosely)."""
    return cast(Any, client).execute_command(*args)


def primaries(host: str, port: int) -> list[Primary]:
    """Every primary of the cluster one node belongs to (CLUSTER NODES)."""
    client = redis.Redis(host=host, port=port, decode_responses=True)
    try:
        nodes = command(client, "CLUSTER NODES")  # redis-py parses it: address -> fields
    finally:
        client.close()
    out = []
    for address, info in nodes.items():
        if "master" in info["flags"].split(","):
            node_host, node_port = address.split("@", 1)[0].rsplit(":", 1)
            out.append(Primary(info["node_id"], node_host, int(node_port)))
    return sorted(out, key=lambda p: p.port)


def owner(nodes: list[Primary], slot: int) -> Primary:
    """The primary serving `slot`, as the first of `nodes` sees it (CLUSTER SLOTS)."""
    client = nodes[0].client()
    try:
        rows = command(client, "CLUSTER SLOTS")
    finally:
        client.close()
    by_id = {(p.host, p.port): p for p in nodes}
    for (start, end), info in _ranges(rows):
        if start <= slot <= end:
            return by_id[info]
    raise AssertionError(f"slot {slot} is served by no node")


def _ranges(rows: object) -> list[tuple[tuple[int, int], tuple[str, int]]]:
    if isinstance(rows, dict):
        return [
            ((int(s), int(e)), (str(v["primary"][0]), int(v["primary"][1]))) for (s, e), v in rows.items()
        ]
    out = []
    for row in rows:  # type: ignore[attr-defined]
        host = row[2][0].decode() if isinstance(row[2][0], bytes) else str(row[2][0])
        out.append(((int(row[0]), int(row[1])), (host, int(row[2][1]))))
    return out


def move_slot(
    nodes: list[Primary],
    slot: int,
    target: Primary,
    batch: int = 10,
    between_batches: Callable[[], None] = lambda: None,
) -> int:
    """Migrate every key of `slot` to `target` in batches of `batch` keys (calling `between_batches` after
    each, e.g. to pause while writers run), then assign the slot; returns the keys moved."""
    source = owner(nodes, slot)
    if source == target:
        return 0
    src, dst = source.client(), target.client()
    moved = 0
    try:
        command(dst, "CLUSTER SETSLOT", slot, "IMPORTING", source.node_id)
        command(src, "CLUSTER SETSLOT", slot, "MIGRATING", target.node_id)
        while True:
            keys = command(src, "CLUSTER GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            command(src, "MIGRATE", target.host, target.port, "", 0, 10_000, "KEYS", *keys)
            moved += len(keys)
            between_batches()
        for node in [target, source] + [n for n in nodes if n not in (source, target)]:
            c = node.client()
            try:
                command(c, "CLUSTER SETSLOT", slot, "NODE", target.node_id)
            finally:
                c.close()
    finally:
        src.close()
        dst.close()
    _wait_agreed(nodes, slot, target)
    return moved


def _wait_agreed(nodes: list[Primary], slot: int, target: Primary, timeout: float = 10.0) -> None:
    """Until every primary routes `slot` to `target` (the new epoch spreads over the cluster bus)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(owner([n] + [m for m in nodes if m != n], slot) == target for n in nodes):
            return
        time.sleep(0.05)
    raise AssertionError(f"slot {slot}: the primaries do not agree on {target.name}")
