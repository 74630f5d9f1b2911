"""docker-compose.yml's optional profiles mirror the local stack's other shapes, checked statically (no Docker
engine needed): the 3-broker Kafka as `streams.devstack.kafka_cluster` configures it, the Redis Cluster of 3
primaries on 7000-7002."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from streams.devstack import kafka_cluster, kafka_version

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def _env_name(setting: str) -> str:
    """The apache/kafka image's spelling of a server property: KAFKA_ + upper case, dots as underscores."""
    return "KAFKA_" + setting.upper().replace(".", "_")


def test_the_default_services_start_without_a_profile() -> None:
    services = _services()
    assert "profiles" not in services["kafka"] and "profiles" not in services["redis"]
    profiled = {name for name, spec in services.items() if "profiles" in spec}
    assert profiled == {
        "kafka-1",
        "kafka-2",
        "kafka-3",
        "redis-7000",
        "redis-7001",
        "redis-7002",
        "redis-cluster-init",
    }


def test_the_kafka_cluster_profile_mirrors_the_local_three_brokers() -> None:
    services = _services()
    cluster = kafka_cluster.KafkaCluster(Path("/unused"))
    ids = set()
    for node in cluster.ids:
        spec = services[f"kafka-{node}"]
        env = spec["environment"]
        assert spec["profiles"] == ["kafka-cluster"]
        assert spec["image"] == f"apache/kafka:{kafka_version()}"
        port = cluster.port(node)  # 29092, 29093, 29094 as `devstack up --kafka-brokers 3`
        assert spec["ports"] == [f"{port}:{port}"]
        assert f"EXTERNAL://127.0.0.1:{port}" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
        assert f"EXTERNAL://:{port}" in env["KAFKA_LISTENERS"].split(",")
        ids.add(env["KAFKA_NODE_ID"])
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        # every broker setting of the local cluster, replication 3 and min ISR 2 included, with its value
        for setting in kafka_cluster.replicated(3):
            name, value = setting.split("=", 1)
            assert env[_env_name(name)] == value, name
        # the data on the node's own volume, not the image's /tmp default
        assert f"kafka-{node}-data:{env['KAFKA_LOG_DIRS']}" in spec["volumes"]
        assert "healthcheck" in spec
    assert ids == {"1", "2", "3"}
    assert len({services[f"kafka-{n}"]["environment"]["CLUSTER_ID"] for n in cluster.ids}) == 1


def test_the_redis_cluster_profile_has_three_primaries_and_creates_the_cluster() -> None:
    services = _services()
    for port in (7000, 7001, 7002):
        spec = services[f"redis-{port}"]
        command = spec["command"]
        assert spec["profiles"] == ["redis-cluster"]
        assert spec["image"].startswith("redis:7")
        # host networking: the node listens on its port and its bus on port + 10000, as on the local stack
        assert spec["network_mode"] == "host"
        assert command[command.index("--port") + 1] == str(port)
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        assert command[command.index("--appendonly") + 1] == "yes"
        assert f"redis-{port}-data:/data" in spec["volumes"]
    init = services["redis-cluster-init"]
    script = " ".join(init["command"])
    assert "redis-cli --cluster create 127.0.0.1:7000 127.0.0.1:7001 127.0.0.1:7002" in script
    assert "--cluster-replicas 0 --cluster-yes" in script
    assert set(init["depends_on"]) == {"redis-7000", "redis-7001", "redis-7002"}
    assert all(d["condition"] == "service_healthy" for d in init["depends_on"].values())
    assert init["restart"] == "no"
