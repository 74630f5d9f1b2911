"""Three (or more) combined broker+controller KRaft nodes: a replicated Kafka like production's, locally.

Each node has its own folder (`<root>/kafka-cluster/node-<id>`: properties, data, logs, pid), the cluster one
id and a static quorum of every node (`controller.quorum.voters`), so storage is formatted without
`--standalone`/`--initial-controllers` and a node killed with SIGKILL rejoins on a plain restart. Topics get
3 replicas and `min.insync.replicas=2`: with `acks=all` a write is on two disks before it is acknowledged, and
the cluster keeps taking writes with one node down.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streams.devstack.config import StackConfig, port_from_env
from streams.devstack.kafka import (
    LOG4J2,
    StackError,
    exit_reason,
    new_cluster_id,
    port_open,
    resolve_jars,
)
from streams.devstack.process import _reap, alive, mark_start, read_pid, spawn, stop

BROKER_PORT = 29092
CONTROLLER_PORT = 29192


def replicated(nodes: int) -> tuple[str, ...]:
    """Broker settings of a replicated cluster: every topic, internal ones included, on min(3, nodes)
    replicas with one fewer required in sync (a single node down blocks neither produce nor commit)."""
    rf = min(3, nodes)
    isr = max(1, rf - 1)
    return (
        "num.partitions=4",
        f"default.replication.factor={rf}",
        f"min.insync.replicas={isr}",
        f"offsets.topic.replication.factor={rf}",
        "offsets.topic.num.partitions=4",
        f"transaction.state.log.replication.factor={rf}",
        f"transaction.state.log.min.isr={isr}",
        f"share.coordinator.state.topic.replication.factor={rf}",
        f"share.coordinator.state.topic.min.isr={isr}",
        "group.initial.rebalance.delay.ms=0",
        # a killed leader is fenced after this long without heartbeats: the pause clients see (default 9 s)
        "broker.session.timeout.ms=6000",
        "broker.heartbeat.interval.ms=1000",
        "unclean.leader.election.enable=false",
    )


@dataclass(frozen=True)
class KafkaCluster:
    """Where the nodes live and which ports they use: node i (1-based) listens on base+i-1."""

    root: Path
    nodes: int = 3
    broker_port: int = BROKER_PORT
    controller_port: int = CONTROLLER_PORT
    heap: str = "384m"

    @classmethod
    def from_env(cls, stack: StackConfig, nodes: int = 3) -> KafkaCluster:
        env = os.environ
        return cls(
            root=stack.root / "kafka-cluster",
            nodes=nodes,
            broker_port=port_from_env("SEGSTREAM_DEVSTACK_KAFKA_CLUSTER_PORT", BROKER_PORT),
            controller_port=port_from_env(
                "SEGSTREAM_DEVSTACK_KAFKA_CLUSTER_CONTROLLER_PORT", CONTROLLER_PORT
            ),
            heap=env.get("SEGSTREAM_DEVSTACK_KAFKA_CLUSTER_HEAP", "384m"),
        )

    @property
    def ids(self) -> range:
        return range(1, self.nodes + 1)

    def port(self, node: int) -> int:
        return self.broker_port + node - 1

    def controller(self, node: int) -> int:
        return self.controller_port + node - 1

    def folder(self, node: int) -> Path:
        return self.root / f"node-{node}"

    def pid_file(self, node: int) -> Path:
        return self.folder(node) / "kafka.pid"

    @property
    def bootstrap(self) -> str:
        """Every node: a client that starts while one is down still finds the cluster."""
        return ",".join(f"127.0.0.1:{self.port(n)}" for n in self.ids)

    def java(self, node: int, libs: Path, *args: str) -> list[str]:
        """The JVM command line of one node (as `kafka._java`, with this node's log configuration)."""
        return [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.folder(node) / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            *args,
        ]


def properties(cluster: KafkaCluster, node: int) -> str:
    voters = ",".join(f"{n}@127.0.0.1:{cluster.controller(n)}" for n in cluster.ids)
    port, controller = cluster.port(node), cluster.controller(node)
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={cluster.folder(node) / 'data'}",
            *replicated(cluster.nodes),
            "auto.create.topics.enable=true",
            "log.retention.hours=168",
            "",
        ]
    )


def _cluster_id(cluster: KafkaCluster) -> str:
    """One id for every node's storage, drawn once and kept beside the nodes."""
    path = cluster.root / "cluster.id"
    if not path.exists():
        cluster.root.mkdir(parents=True, exist_ok=True)
        path.write_text(new_cluster_id())
    return path.read_text().strip()


def start_node(cluster: KafkaCluster, node: int, libs: Path) -> int:
    """Start one node unless it runs; format its storage on its first start only."""
    pid = read_pid(cluster.pid_file(node))
    if pid is not None:
        return pid
    for port in (cluster.port(node), cluster.controller(node)):
        if port_open(port):
            raise StackError(
                f"port {port} is taken by a process the local stack did not start; stop it or set "
                "SEGSTREAM_DEVSTACK_KAFKA_CLUSTER_PORT / SEGSTREAM_DEVSTACK_KAFKA_CLUSTER_CONTROLLER_PORT"
            )
    folder = cluster.folder(node)
    folder.mkdir(parents=True, exist_ok=True)
    props = folder / "server.properties"
    props.write_text(properties(cluster, node))
    (folder / "log4j2.properties").write_text(LOG4J2.format(log=folder / "server.log"))
    if not (folder / "data" / "meta.properties").exists():
        fmt = cluster.java(
            node, libs, "kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id(cluster)}"
        )
        result = subprocess.run([*fmt, "-c", str(props)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"formatting Kafka node {node} failed:\n{result.stdout}{result.stderr}")
    argv = cluster.java(node, libs, "kafka.Kafka", str(props))
    mark_start(folder / "server.log", folder / "kafka.out")
    return spawn(argv, folder / "kafka.out", cluster.pid_file(node), marker=str(props))


def libs(stack: StackConfig) -> Path:
    """The same jars as the single broker's (resolved once under the stack's kafka folder)."""
    return resolve_jars(stack)


def wait_ready(cluster: KafkaCluster, pids: dict[int, int], timeout: float = 120.0) -> None:
    """Ready: every node registered with the quorum (the metadata lists them all), not merely ports open."""
    from kafka import KafkaAdminClient

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        for node, pid in pids.items():
            if not alive(pid):
                folder = cluster.folder(node)
                raise StackError(
                    f"Kafka node {node} exited during start; see {folder / 'server.log'} and "
                    f"{folder / 'kafka.out'}:\n{exit_reason(folder)}"
                )
        ports = [cluster.port(n) for n in pids]
        if all(port_open(p) for p in ports):
            try:
                admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=5000)
                try:
                    brokers = {
                        b["broker_id"] for b in admin.describe_cluster()["brokers"] if not b.get("is_fenced")
                    }
                    admin.list_topics()
                finally:
                    admin.close()
                if set(cluster.ids) <= brokers:
                    return
                last = f"brokers registered: {sorted(brokers)}"
            except Exception as exc:  # still starting or electing: any client error means "not yet"
                last = exc
        time.sleep(0.5)
    raise StackError(f"the Kafka cluster was not complete within {timeout:.0f}s: {last}")


def up(stack: StackConfig, cluster: KafkaCluster) -> dict[int, int]:
    """Idempotent: start every node not running (all at once: a quorum needs a majority to elect)."""
    jars = libs(stack)
    pids = {n: start_node(cluster, n, jars) for n in cluster.ids}
    wait_ready(cluster, pids)
    return pids


def pids(cluster: KafkaCluster) -> dict[int, int | None]:
    return {n: read_pid(cluster.pid_file(n)) for n in cluster.ids}


def down(cluster: KafkaCluster, timeout: float = 60.0) -> list[int]:
    """SIGTERM every running node at once (one by one, the last ones lose their quorum and hang in their
    controlled shutdown) and wait until their ports are free; the nodes stopped."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(cluster.nodes) as pool:
        stopped = list(pool.map(lambda n: stop(cluster.pid_file(n), grace_seconds=timeout), cluster.ids))
    # a JVM whose main thread ended already reads as gone (its /proc state is Z) while its threads still
    # hold the listeners for a moment
    mine = [n for n, was in zip(cluster.ids, stopped, strict=True) if was]
    deadline = time.monotonic() + timeout
    ports = [p for n in mine for p in (cluster.port(n), cluster.controller(n))]  # never someone else's
    while any(port_open(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.2)
    return mine


def kill9(cluster: KafkaCluster, node: int) -> None:
    """A crash: SIGKILL one node, no controlled shutdown (its leaderships move once its session expires)."""
    pid = read_pid(cluster.pid_file(node))
    if pid is None:
        raise StackError(f"Kafka node {node} is not running")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    cluster.pid_file(node).unlink(missing_ok=True)


def restart(stack: StackConfig, cluster: KafkaCluster, node: int, timeout: float = 120.0) -> float:
    """Start one node again (log recovery after a kill) and wait until the cluster lists it; seconds."""
    started = time.monotonic()
    pid = start_node(cluster, node, libs(stack))
    wait_ready(cluster, {node: pid}, timeout)
    return time.monotonic() - started


def wipe(cluster: KafkaCluster) -> None:
    """Forget the cluster's data (never the jars): only while no node runs."""
    assert all(p is None for p in pids(cluster).values()), "wipe only a stopped cluster"
    shutil.rmtree(cluster.root, ignore_errors=True)
