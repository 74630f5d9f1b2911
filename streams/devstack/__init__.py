"""The project's local stack: Apache Kafka (KRaft) from Maven Central jars and Debian's redis-server.

`python -m streams.devstack up|down|status`. No Docker needed; everything lives under `.devstack/`.
`up --redis-cluster` also starts a 3-primary Redis Cluster (streams/devstack/redis_cluster.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.devstack import kafka, kafka_cluster, redis, redis_cluster
from streams.devstack.config import StackConfig, kafka_version
from streams.devstack.kafka import StackError
from streams.devstack.process import read_pid, stop

__all__ = [
    "StackConfig",
    "StackError",
    "Status",
    "cluster_down",
    "cluster_status",
    "cluster_up",
    "down",
    "kafka_cluster_up",
    "kafka_version",
    "status",
    "up",
]

# The local Redis Cluster (`up --redis-cluster`), beside the single server
cluster_up = redis_cluster.up
cluster_down = redis_cluster.down
cluster_status = redis_cluster.status


@dataclass(frozen=True)
class Status:
    kafka_pid: int | None
    redis_pid: int | None
    config: StackConfig

    @property
    def running(self) -> bool:
        return self.kafka_pid is not None and self.redis_pid is not None


def status(cfg: StackConfig | None = None) -> Status:
    cfg = cfg or StackConfig.from_env()
    return Status(read_pid(cfg.kafka_dir / "kafka.pid"), read_pid(cfg.redis_dir / "redis.pid"), cfg)


def up(cfg: StackConfig | None = None) -> Status:
    """Idempotent: starts what is not running, then waits until both services answer."""
    cfg = cfg or StackConfig.from_env()
    cfg.kafka_dir.mkdir(parents=True, exist_ok=True)
    cfg.redis_dir.mkdir(parents=True, exist_ok=True)
    redis_pid = redis.start(cfg)
    kafka_pid = kafka.start(cfg)
    redis.wait_ready(cfg, redis_pid)
    kafka.wait_ready(cfg, kafka_pid)
    return status(cfg)


def kafka_cluster_up(cfg: StackConfig | None = None, brokers: int = 3) -> kafka_cluster.KafkaCluster:
    """`up --kafka-brokers N`: Redis and a replicated Kafka of N nodes (instead of the single broker)."""
    cfg = cfg or StackConfig.from_env()
    cfg.redis_dir.mkdir(parents=True, exist_ok=True)
    cluster = kafka_cluster.KafkaCluster.from_env(cfg, brokers)
    redis_pid = redis.start(cfg)
    kafka_cluster.up(cfg, cluster)
    redis.wait_ready(cfg, redis_pid)
    return cluster


def down(cfg: StackConfig | None = None) -> list[str]:
    """Stops only the processes recorded in our pid files (the cluster's too); returns the names of those it
    stopped."""
    cfg = cfg or StackConfig.from_env()
    stopped = [f"kafka node {n}" for n in kafka_cluster.down(kafka_cluster.KafkaCluster.from_env(cfg))]
    if redis_cluster.down(cfg):
        stopped.append("redis-cluster")
    if stop(cfg.kafka_dir / "kafka.pid", grace_seconds=60):
        stopped.append("kafka")
    if stop(cfg.redis_dir / "redis.pid"):
        stopped.append("redis")
    return stopped
