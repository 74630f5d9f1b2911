"""Command line of the local stack: up | down | status."""

from __future__ import annotations

import argparse
import sys

from streams.devstack import (
    StackError,
    Status,
    down,
    kafka_cluster,
    kafka_cluster_up,
    kafka_version,
    redis_cluster,
    status,
    up,
)
from streams.devstack.redis_cluster import ClusterStatus


def _report(st: Status) -> str:
    cfg = st.config
    kafka_state = f"running (pid {st.kafka_pid})" if st.kafka_pid else "stopped"
    redis_state = f"running (pid {st.redis_pid})" if st.redis_pid else "stopped"
    return (
        f"kafka  {kafka_state:<22} Apache Kafka {kafka_version()} (KRaft) at {cfg.kafka_bootstrap}"
        f"  log {cfg.kafka_dir / 'server.log'}\n"
        f"redis  {redis_state:<22} {cfg.redis_url}  log {cfg.redis_dir / 'redis.log'}"
    )


def _kafka_cluster_report(st: Status) -> str:
    """One line per node of the replicated Kafka, empty when none of its nodes ever ran here."""
    cluster = kafka_cluster.KafkaCluster.from_env(st.config)
    if not cluster.root.exists():
        return ""
    lines = []
    for node, pid in kafka_cluster.pids(cluster).items():
        state = f"running (pid {pid})" if pid else "stopped"
        log = cluster.folder(node) / "server.log"
        lines.append(f"\nkafka-{node} {state:<22} 127.0.0.1:{cluster.port(node)}  log {log}")
    return "".join(lines) + f"\nbootstrap {cluster.bootstrap}"


def _redis_cluster_report(st: ClusterStatus, cfg_dir: str) -> str:
    """One line for the local Redis Cluster: its nodes, ports and logs."""
    pids = ", ".join(str(pid) for pid in st.pids if pid is not None)
    state = f"running (pids {pids})" if st.running else ("partly running" if pids else "stopped")
    ports = "/".join(str(port) for port in st.ports)
    return f"redis-cluster {state:<15} {st.url}  ports {ports} (bus +10000)  logs {cfg_dir}/<port>/redis.log"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--kafka-brokers",
        type=int,
        choices=[1, 3],
        default=1,
        help="3: a replicated Kafka of 3 KRaft nodes on 29092-29094 instead of the single broker (up only)",
    )
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="up: also start a 3-primary Redis Cluster (ports from SEGSTREAM_DEVSTACK_CLUSTER_PORT, 7000)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            if args.kafka_brokers > 1:
                kafka_cluster_up(brokers=args.kafka_brokers)
                stack = status()
                print(_report(stack).splitlines()[1] + _kafka_cluster_report(stack))
            else:
                stack = up()
                print(_report(stack) + _kafka_cluster_report(status()))
            if args.redis_cluster:
                cfg = stack.config
                print(_redis_cluster_report(redis_cluster.up(cfg), str(cfg.cluster_dir)))
        elif args.command == "down":
            stopped = down()
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        else:
            st = status()
            print(_report(st) + _kafka_cluster_report(st))
            cluster = redis_cluster.status(st.config)
            if any(pid is not None for pid in cluster.pids) or args.redis_cluster:
                print(_redis_cluster_report(cluster, str(st.config.cluster_dir)))
                if args.redis_cluster and not cluster.running:
                    return 3
            return 0 if st.running or (st.redis_pid and _kafka_cluster_running(st)) else 3
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _kafka_cluster_running(st: Status) -> bool:
    cluster = kafka_cluster.KafkaCluster.from_env(st.config)
    return all(pid is not None for pid in kafka_cluster.pids(cluster).values())


if __name__ == "__main__":
    sys.exit(main())
