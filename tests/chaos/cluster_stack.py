"""A replicated Kafka of 3 KRaft nodes (streams.devstack.kafka_cluster) with a shared Redis, for the chaos
runner: the same interface as `PrivateStack`, its faults aimed at one node of the cluster."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient

from streams.devstack import StackConfig, kafka, kafka_cluster
from tests.chaos.stack import REPO, PrivateStack, _retrying
from tests.services import forget_keys

DEFAULT_DIR = REPO / ".chaos" / "cluster"
# Not the reduced chaos suite's 29092/29093 (tests/chaos/test_chaos.py) nor the CLI's 29092-29094/29192-29194:
# a developer's `up --kafka-brokers 3` may run meanwhile.
BROKER_PORT, CONTROLLER_PORT = 29292, 29392


@dataclass
class ClusterStack(PrivateStack):
    """3 nodes of our own (their data wiped on `start()` when none runs) and a Redis we share: the runner's
    keys carry a prefix of their own (chaos:<scenario>-<seed>-<random>), so nothing collides."""

    cluster: kafka_cluster.KafkaCluster | None = None
    shared_redis_url: str = "redis://127.0.0.1:6379/0"

    @classmethod
    def create_cluster(
        cls,
        root: Path = DEFAULT_DIR,
        broker_port: int = BROKER_PORT,
        controller_port: int = CONTROLLER_PORT,
        redis_url: str | None = None,
    ) -> ClusterStack:
        # the jars are the local stack's (resolved once under .devstack/kafka), the nodes live under root
        jars_from = StackConfig.from_env()
        # laid out as the local stack's (<root>/kafka-cluster), so `devstack status|down` with
        # SEGSTREAM_DEVSTACK_DIR=<root> see these nodes too
        nodes = root.resolve() / "kafka-cluster"
        cluster = kafka_cluster.KafkaCluster(nodes, 3, broker_port, controller_port, heap="384m")
        url = redis_url or os.environ.get("SEGSTREAM_REDIS_URL", "redis://127.0.0.1:6379/0")
        return cls(jars_from, cluster, url)

    @property
    def nodes(self) -> kafka_cluster.KafkaCluster:
        assert self.cluster is not None
        return self.cluster

    @property
    def kafka_bootstrap(self) -> str:
        return self.nodes.bootstrap

    @property
    def redis_url(self) -> str:
        return self.shared_redis_url

    def start(self) -> None:
        if all(pid is None for pid in kafka_cluster.pids(self.nodes).values()):
            kafka_cluster.wipe(self.nodes)
        kafka_cluster.up(self.cfg, self.nodes)

    def ensure_up(self) -> None:
        """After a scenario: every node running again (a node killed by a failed scenario comes back)."""

        def start() -> None:
            kafka_cluster.up(self.cfg, self.nodes)

        _retrying(start)

    def stop(self) -> None:
        kafka_cluster.down(self.nodes)

    def forget(self, key_prefix: str) -> None:
        """The Redis is shared: a scenario that held leaves none of its keys behind."""
        forget_keys(self.redis_url, key_prefix)

    # -- faults -------------------------------------------------------------------------------------------
    def leader_of(self, topic: str, partition: int) -> int:
        """The node leading a partition now (the one whose crash the worker's clients feel at once)."""
        admin = KafkaAdminClient(bootstrap_servers=self.kafka_bootstrap, request_timeout_ms=10000)
        try:
            for described in admin.describe_topics([topic]):
                for p in described["partitions"]:
                    if p["partition_index"] == partition:
                        return int(p["leader_id"])
        finally:
            admin.close()
        raise RuntimeError(f"no leader known for {topic}[{partition}]")

    def replicas(self, topic: str) -> list[int]:
        """How many replicas each partition of the topic has, in partition order."""
        admin = KafkaAdminClient(bootstrap_servers=self.kafka_bootstrap, request_timeout_ms=10000)
        try:
            partitions = [p for d in admin.describe_topics([topic]) for p in d["partitions"]]
            return [len(p["replica_nodes"]) for p in sorted(partitions, key=lambda p: p["partition_index"])]
        finally:
            admin.close()

    def topic_overrides(self, topic: str) -> dict[str, str]:
        """The configs set on the topic itself (not inherited from the brokers), key -> value."""
        from kafka.admin import ConfigResource, ConfigResourceType

        admin = KafkaAdminClient(bootstrap_servers=self.kafka_bootstrap, request_timeout_ms=10000)
        try:
            found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
            return {
                k: str(c["value"]) for k, c in found.items() if c["config_source"] == "DYNAMIC_TOPIC_CONFIG"
            }
        finally:
            admin.close()

    def set_cluster_default(self, key: str, value: str) -> None:
        """A cluster-wide broker default, set as an operator would, with Kafka's own `kafka-configs
        --entity-default` (Kafka 4 with ELR refuses min.insync.replicas per broker, and its removal)."""
        change = ["--add-config", f"{key}={value}"]
        tool = ["kafka.admin.ConfigCommand", "--bootstrap-server", self.kafka_bootstrap]
        target = ["--entity-type", "brokers", "--entity-default", "--alter", *change]
        libs = kafka.resolve_jars(self.cfg)
        done = subprocess.run(
            self.nodes.java(1, libs, *tool, *target), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        self._await_default(key, value)

    def _await_default(self, key: str, value: str, timeout: float = 30.0) -> None:
        """Until every broker says `key` is `value`: the controller answers the alter before the brokers
        have applied it from the metadata log, and a broker read meanwhile still says the old value."""
        from kafka.admin import ConfigResource, ConfigResourceType

        admin = KafkaAdminClient(bootstrap_servers=self.kafka_bootstrap, request_timeout_ms=10000)
        try:
            ids = [str(b["broker_id"]) for b in admin.describe_cluster()["brokers"]]
            deadline = time.monotonic() + timeout
            while True:
                wanted = [ConfigResource(ConfigResourceType.BROKER, node, {key: None}) for node in ids]
                found = admin.describe_configs(wanted, config_filter="all")["broker"]
                said = {node: str(found[node][key]["value"]) for node in ids}
                if all(v == value for v in said.values()):
                    return
                assert time.monotonic() < deadline, (
                    f"brokers still say {key}={said} after {timeout}s, not {value}"
                )
                time.sleep(0.2)
        finally:
            admin.close()

    def kill9_node(self, node: int) -> None:
        kafka_cluster.kill9(self.nodes, node)

    def restart_node(self, node: int, timeout: float = 120.0) -> float:
        started = time.monotonic()

        def start() -> None:
            kafka_cluster.restart(self.cfg, self.nodes, node, timeout)

        _retrying(start)
        return time.monotonic() - started

    def kill9_kafka(self) -> None:
        raise NotImplementedError("a cluster has nodes: kill9_node(node)")

    def kill9_redis(self) -> None:
        raise NotImplementedError("the Redis is shared: never killed here")
