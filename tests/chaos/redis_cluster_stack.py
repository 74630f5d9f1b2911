"""A Redis Cluster of 3 primaries with a replica each, for the chaos runner's `redis_failover`: the private
broker of `PrivateStack`, and this cluster (its own folder and ports) in place of the single Redis.

Failover is Redis Cluster's own: a primary silent for `cluster-node-timeout` is failed over by its replica,
which the other primaries elect. Replication is asynchronous, so the replica may lack the primary's last
acknowledged writes: the workers meet a Redis that went back in time, as in `redis_rewind`.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import redis as redis_client

from streams.devstack import StackConfig
from streams.devstack.debian import program
from streams.devstack.process import alive, read_pid, spawn, stop
from streams.devstack.redis import server_argv
from tests.chaos.stack import REPO, PrivateStack, _kill9

DEFAULT_DIR = REPO / ".chaos" / "redis-cluster"
# Not the devstack's cluster (7000-7002), nor the reduced suite's 26379: 21100-21105, bus ports + 10000,
# both below Linux's ephemeral range (32768-60999): with 27100 the bus ports were 37100-37105, and a client
# connection that happened to take 37102 as its local port stopped a clean-clone CI run ("Could not create
# server TCP listening socket 127.0.0.1:37102: Address already in use").
BASE_PORT, NODES, NODE_TIMEOUT_MS = 21100, 6, 2000
BUS_OFFSET = 10_000


@dataclass
class RedisClusterStack(PrivateStack):
    """`PrivateStack`'s broker (and its single Redis, unused) plus 6 cluster nodes under `cluster_root`."""

    cluster_root: Path = DEFAULT_DIR
    base_port: int = BASE_PORT

    @classmethod
    def create_failover(
        cls,
        root: Path = DEFAULT_DIR,
        kafka_port: int = 29492,
        controller_port: int = 29493,
        redis_port: int = 26479,
        base_port: int = BASE_PORT,
    ) -> RedisClusterStack:
        cfg = StackConfig(root.resolve() / "stack", kafka_port, controller_port, redis_port, "384m")
        return cls(cfg, root.resolve() / "nodes", base_port)

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(self.base_port + n for n in range(NODES))

    @property
    def redis_url(self) -> str:
        """Every node named, as a deployment should: a process starting while one is down finds the rest."""
        return self.url_starting_with(self.base_port)

    def url_starting_with(self, port: int) -> str:
        """The cluster's URL with `port` as its first entry node (redis-py's own first choice)."""
        ordered = [port, *(p for p in self.ports if p != port)]
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ordered) + "/0"

    def _dir(self, port: int) -> Path:
        return self.cluster_root / str(port)

    def _pid(self, port: int) -> int | None:
        return read_pid(self._dir(port) / "redis.pid")

    def start(self) -> None:
        """The broker and the nodes, the cluster created once; a failed start stops what it started (a
        fixture whose setup fails is not torn down, and the next run would find the half stack)."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        super().start()
        if all(self._pid(port) is None for port in self.ports):
            shutil.rmtree(self.cluster_root, ignore_errors=True)
        for port in self.ports:
            self._start_node(port)
        if not int(self._info(self.base_port).get("cluster_slots_assigned", "0")):
            nodes = [f"127.0.0.1:{port}" for port in self.ports]
            cli = program("redis-cli", "redis-tools", "/usr/bin/redis-cli", self.cfg.install_missing)
            argv = [cli, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"]
            done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create: {done.stdout[-400:]}{done.stderr[-400:]}")
        self._wait_ok()

    def ensure_up(self) -> None:
        """After a scenario: every node running and the cluster whole again (a killed node rejoins as a
        replica of the one that replaced it)."""
        super().ensure_up()
        for port in self.ports:
            self._start_node(port)
        self._wait_ok()

    def stop(self) -> None:
        for port in self.ports:
            stop(self._dir(port) / "redis.pid")
        super().stop()

    # -- the cluster's view ------------------------------------------------------------------------------
    def _client(self, port: int) -> redis_client.Redis:
        return redis_client.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)

    def _info(self, port: int) -> dict[str, str]:
        client = self._client(port)
        try:
            text = str(cast(Any, client).execute_command("CLUSTER", "INFO"))
        finally:
            client.close()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def _live(self) -> list[int]:
        return [port for port in self.ports if self._pid(port) is not None]

    def primary_of(self, key: str) -> int:
        """The port of the primary serving `key`'s slot now (asked of a live node)."""
        for port in self._live():
            client = self._client(port)
            try:
                slot = int(cast(Any, client).execute_command("CLUSTER", "KEYSLOT", key))
                for first, last, primary, *_ in cast(Any, client).execute_command("CLUSTER", "SLOTS"):
                    if first <= slot <= last:
                        return int(primary[1])
            except redis_client.RedisError:
                continue
            finally:
                client.close()
        raise RuntimeError(f"no live node knows who serves {key!r}")

    def _wait_ok(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        states: list[str] = []
        while time.monotonic() < deadline:
            states = []
            for port in self.ports:
                try:
                    states.append(self._info(port).get("cluster_state", "?"))
                except redis_client.RedisError as exc:
                    states.append(type(exc).__name__)
            if all(state == "ok" for state in states):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Redis Cluster is not ok after {timeout:.0f}s: {states}")

    # -- faults -------------------------------------------------------------------------------------------
    def kill9_node(self, port: int) -> None:
        _kill9(self._dir(port) / "redis.pid", f"redis cluster node {port}")

    def wait_failover(self, key: str, dead: int, timeout: float = 60.0) -> float:
        """Seconds until a node other than `dead` serves `key`'s slot and the live nodes say ok."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError, redis_client.RedisError):
                if self.primary_of(key) != dead and all(
                    self._info(port).get("cluster_state") == "ok" for port in self._live()
                ):
                    return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError(f"no replica took over {key!r} from node {dead} within {timeout:.0f}s")

    def replica_of(self, primary: int) -> int:
        """The port of the replica following the primary on `primary`."""
        client = self._client(primary)
        try:
            info = client.info("replication")
        finally:
            client.close()
        replicas = [int(v["port"]) for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
        if not replicas:
            raise RuntimeError(f"node {primary} has no replica: {info}")
        return replicas[0]

    def cut_replication(self, primary: int, timeout: float = 10.0) -> int:
        """Stop the primary's writes from reaching its replica, as a network cut would, and return the
        replica's port: the replica's link is killed and it cannot log in again (a password the primary
        does not have), while the cluster bus goes on (the primary is not failed over for this). Checked,
        not assumed: returns once the replica says its link is down; the kill is repeated until it does."""
        replica = self.replica_of(primary)
        follower, leader = self._client(replica), self._client(primary)
        try:
            follower.config_set("masterauth", "not-the-primary-password")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                cast(Any, leader).execute_command("CLIENT", "KILL", "TYPE", "replica")
                time.sleep(0.05)
                if follower.info("replication").get("master_link_status") == "down":
                    return replica
            raise RuntimeError(f"replica {replica} still follows {primary} {timeout:.0f}s after the cut")
        finally:
            follower.close()
            leader.close()

    def read_on_replica(self, port: int, key: str, field: str) -> str | None:
        """One field as the replica on `port` holds it (READONLY: a replica answers for its primary's slots
        instead of redirecting)."""
        client = self._client(port)
        try:
            cast(Any, client).execute_command("READONLY")
            return cast(str | None, client.hget(key, field))
        finally:
            client.close()

    def mend_replication(self, replica: int) -> None:
        client = self._client(replica)
        try:
            client.config_set("masterauth", "")
        finally:
            client.close()

    def read_on(self, port: int, key: str, field: str) -> str | None:
        """One field as the node on `port` holds it (no redirection: the node must serve the key's slot)."""
        client = self._client(port)
        try:
            return cast(str | None, client.hget(key, field))
        finally:
            client.close()

    def restart_node(self, port: int) -> float:
        started = time.monotonic()
        self._start_node(port)
        self._wait_ok()
        return time.monotonic() - started

    def kill9_redis(self) -> None:
        raise NotImplementedError("a cluster has nodes: kill9_node(port)")

    def _start_node(self, port: int) -> None:
        if self._pid(port) is not None:
            return
        data = self._dir(port) / "data"
        data.mkdir(parents=True, exist_ok=True)
        extra = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
        argv = server_argv(self.cfg, port, data, *extra, "--cluster-node-timeout", str(NODE_TIMEOUT_MS))
        pid = spawn(argv, self._dir(port) / "redis.log", self._dir(port) / "redis.pid", marker=str(data))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not alive(pid):
                raise RuntimeError(f"cluster node {port} exited during start: {self._dir(port)}/redis.log")
            with contextlib.suppress(redis_client.RedisError):
                if self._client(port).ping():
                    return
            time.sleep(0.1)
        raise RuntimeError(f"cluster node {port} did not answer PING within 30 s")
