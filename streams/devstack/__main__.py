"""Command line of the local stack: up | down | status."""

from __future__ import annotations

import argparse
import sys

from streams.devstack import StackError, Status, down, kafka_cluster, kafka_version, status, up, up_cluster


def _report(st: Status) -> str:
    cfg = st.config
    kafka_state = f"running (pid {st.kafka_pid})" if st.kafka_pid else "stopped"
    redis_state = f"running (pid {st.redis_pid})" if st.redis_pid else "stopped"
    return (
        f"kafka  {kafka_state:<22} Apache Kafka {kafka_version()} (KRaft) at {cfg.kafka_bootstrap}"
        f"  log {cfg.kafka_dir / 'server.log'}\n"
        f"redis  {redis_state:<22} {cfg.redis_url}  log {cfg.redis_dir / 'redis.log'}"
    )


def _cluster_report(st: Status) -> str:
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
    args = parser.parse_args(argv)
    try:
        if args.command == "up" and args.kafka_brokers > 1:
            up_cluster(brokers=args.kafka_brokers)
            st = status()
            print(_report(st).splitlines()[1] + _cluster_report(st))
        elif args.command == "up":
            print(_report(up()) + _cluster_report(status()))
        elif args.command == "down":
            stopped = down()
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        else:
            st = status()
            print(_report(st) + _cluster_report(st))
            return 0 if st.running or (st.redis_pid and _cluster_running(st)) else 3
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _cluster_running(st: Status) -> bool:
    cluster = kafka_cluster.KafkaCluster.from_env(st.config)
    return all(pid is not None for pid in kafka_cluster.pids(cluster).values())


if __name__ == "__main__":
    sys.exit(main())
