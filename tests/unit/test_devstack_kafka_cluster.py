"""The 3-node local Kafka's configuration: one quorum of every node, replication 3 with 2 in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.devstack import StackConfig
from streams.devstack.kafka_cluster import KafkaCluster, properties, replicated


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_each_node_votes_in_one_quorum_and_advertises_its_own_port() -> None:
    cluster = KafkaCluster(Path("/tmp/c"), broker_port=29092, controller_port=29192)
    assert cluster.bootstrap == "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094"
    node2 = _props(properties(cluster, 2))
    assert node2["node.id"] == "2"
    assert node2["controller.quorum.voters"] == "1@127.0.0.1:29192,2@127.0.0.1:29193,3@127.0.0.1:29194"
    assert node2["listeners"] == "PLAINTEXT://127.0.0.1:29093,CONTROLLER://127.0.0.1:29193"
    assert node2["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29093"
    assert node2["log.dirs"] == "/tmp/c/node-2/data"
    assert node2["default.replication.factor"] == "3"
    assert node2["min.insync.replicas"] == "2"
    assert node2["offsets.topic.replication.factor"] == "3"
    assert node2["transaction.state.log.min.isr"] == "2"


def test_a_smaller_cluster_never_asks_more_replicas_than_it_has() -> None:
    assert "default.replication.factor=1" in replicated(1) and "min.insync.replicas=1" in replicated(1)
    assert "default.replication.factor=2" in replicated(2) and "min.insync.replicas=1" in replicated(2)


def test_ports_and_folder_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSTREAM_DEVSTACK_KAFKA_CLUSTER_PORT", "39092")
    monkeypatch.setenv("SEGSTREAM_DEVSTACK_KAFKA_CLUSTER_CONTROLLER_PORT", "39192")
    cluster = KafkaCluster.from_env(StackConfig(root=Path("/tmp/stack")))
    assert (cluster.port(3), cluster.controller(3)) == (39094, 39194)
    assert cluster.folder(1) == Path("/tmp/stack/kafka-cluster/node-1")
