"""Move one Redis Cluster slot to another primary the way `redis-cli --cluster reshard` does, key batch by key
batch (CLUSTER SETSLOT IMPORTING / MIGRATING, MIGRATE, SETSLOT NODE), so a test can move a given slot: the
slot of one Kafka partition's hash tag. Clients see MOVED and ASK meanwhile, as during a real resharding."""

from __future__ import annotations

import subprocess
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


def ranges(nodes: list[Primary]) -> dict[str, list[tuple[int, int]]]:
    """ "host:port" -> the slot ranges it serves (CLUSTER SLOTS, as the first node sees it)."""
    client = nodes[0].client()
    try:
        rows = command(client, "CLUSTER SLOTS")
    finally:
        client.close()
    out: dict[str, list[tuple[int, int]]] = {}
    for (start, end), (host, port) in _ranges(rows):
        out.setdefault(f"{host}:{port}", []).append((start, end))
    return {name: sorted(spans) for name, spans in out.items()}


def redis_cli_reshard(nodes: list[Primary], source: Primary, target: Primary, slots: int) -> str:
    """`redis-cli --cluster reshard`: the `slots` lowest-numbered slots of `source` move to `target`, key
    batch by key batch (10 keys per MIGRATE); returns its last output line."""
    done = subprocess.run(
        [
            "redis-cli",
            "--cluster",
            "reshard",
            source.name,
            "--cluster-from",
            source.node_id,
            "--cluster-to",
            target.node_id,
            "--cluster-slots",
            str(slots),
            "--cluster-pipeline",
            "10",
            "--cluster-yes",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"redis-cli --cluster reshard exited {done.returncode}: {done.stderr[-500:]}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""
