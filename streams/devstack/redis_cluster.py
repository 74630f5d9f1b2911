"""A 3-primary Redis Cluster from Debian's redis-server, on loopback: `python -m streams.devstack up
--redis-cluster`.

Ports `base`, `base + 1`, `base + 2` (SEGSTREAM_DEVSTACK_CLUSTER_PORT, default 7000); each node's cluster bus
listens on port + 10000, so those must be free too. `redis-cli --cluster create` assigns the 16384 slots on
the first start only; the nodes keep the layout in their `nodes.conf` and rejoin by themselves after a stop.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from streams.devstack.config import StackConfig
from streams.devstack.debian import program
from streams.devstack.kafka import StackError, port_open
from streams.devstack.process import alive, mark_start, read_pid, since_start, spawn, stop
from streams.devstack.redis import server_argv

NODES = 3
BUS_OFFSET = 10_000  # Redis Cluster's node-to-node bus: the client port + 10000


@dataclass(frozen=True)
class ClusterStatus:
    pids: tuple[int | None, ...]
    ports: tuple[int, ...]
    url: str

    @property
    def running(self) -> bool:
        return all(pid is not None for pid in self.pids)


def ports(cfg: StackConfig) -> tuple[int, ...]:
    return tuple(cfg.cluster_port + n for n in range(NODES))


def _node_dir(cfg: StackConfig, port: int) -> Path:
    return cfg.cluster_dir / str(port)


def status(cfg: StackConfig) -> ClusterStatus:
    pids = tuple(read_pid(_node_dir(cfg, port) / "redis.pid") for port in ports(cfg))
    return ClusterStatus(pids, ports(cfg), cfg.redis_cluster_url)


def up(cfg: StackConfig, timeout: float = 60.0) -> ClusterStatus:
    """Idempotent: starts the nodes not running, creates the cluster once, waits for cluster_state:ok."""
    pids = [_start_node(cfg, port) for port in ports(cfg)]
    for port, pid in zip(ports(cfg), pids, strict=True):
        _wait_ping(cfg, port, pid, timeout)
    if not _has_slots(cfg.cluster_port):
        _create(cfg)
    _wait_ok(cfg, timeout)
    return status(cfg)


def down(cfg: StackConfig) -> bool:
    """Stops the nodes recorded in our pid files; True when any was running."""
    stopped = [stop(_node_dir(cfg, port) / "redis.pid") for port in ports(cfg)]
    return any(stopped)


def _start_node(cfg: StackConfig, port: int) -> int:
    folder = _node_dir(cfg, port)
    pid_file = folder / "redis.pid"
    pid = read_pid(pid_file)
    if pid is not None:
        return pid
    for taken in (port, port + BUS_OFFSET):
        if port_open(taken):
            raise StackError(
                f"port {taken} is taken by a process the local stack did not start; stop it or set "
                "SEGSTREAM_DEVSTACK_CLUSTER_PORT (the cluster uses 3 ports from it, and each + 10000)"
            )
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    argv = server_argv(
        cfg,
        port,
        data,
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "5000",
    )
    mark_start(folder / "redis.log")
    return spawn(argv, folder / "redis.log", pid_file, marker=str(data))


def _cli(cfg: StackConfig) -> str:
    return program("redis-cli", "redis-tools", "/usr/bin/redis-cli", cfg.install_missing)


def _cluster_info(port: int) -> dict[str, str]:
    import redis as redis_client

    client = redis_client.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)
    try:
        text = str(cast(Any, client).execute_command("CLUSTER", "INFO"))
    finally:
        client.close()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _has_slots(port: int) -> bool:
    return int(_cluster_info(port).get("cluster_slots_assigned", "0")) > 0


def _create(cfg: StackConfig) -> None:
    nodes = [f"127.0.0.1:{port}" for port in ports(cfg)]
    argv = [_cli(cfg), "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    log = cfg.cluster_dir / "create.log"
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise StackError(f"redis-cli --cluster create failed (exit {result.returncode}); see {log}")


def _wait_ping(cfg: StackConfig, port: int, pid: int, timeout: float) -> None:
    import redis as redis_client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):  # its warnings say why (a damaged AOF or nodes.conf, a port it cannot bind)
            log = _node_dir(cfg, port) / "redis.log"
            warnings = [line for line in since_start(log) if " # " in line]
            raise StackError(
                f"redis-server (cluster node {port}) exited during start; see {log}:\n"
                + "\n".join(warnings[-5:])
            )
        try:
            if redis_client.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping():
                return
        except redis_client.RedisError:
            pass
        time.sleep(0.1)
    raise StackError(f"cluster node {port} did not answer PING within {timeout:.0f}s")


def _wait_ok(cfg: StackConfig, timeout: float) -> None:
    """Every node must say cluster_state:ok (each learns the others' slots over the bus, not at once)."""
    deadline = time.monotonic() + timeout
    states: list[str] = []
    while time.monotonic() < deadline:
        states = [_cluster_info(port).get("cluster_state", "?") for port in ports(cfg)]
        if all(state == "ok" for state in states):
            return
        time.sleep(0.2)
    raise StackError(f"the Redis Cluster did not reach cluster_state:ok within {timeout:.0f}s: {states}")
