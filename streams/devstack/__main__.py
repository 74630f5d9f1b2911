"""Command line of the local stack: up | down | status."""

from __future__ import annotations

import argparse
import sys

from streams.devstack import StackError, Status, down, kafka_version, redis_cluster, status, up
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


def _cluster_report(st: ClusterStatus, cfg_dir: str) -> str:
    pids = ", ".join(str(pid) for pid in st.pids if pid is not None)
    state = f"running (pids {pids})" if st.running else ("partly running" if pids else "stopped")
    ports = "/".join(str(port) for port in st.ports)
    return f"redis-cluster {state:<15} {st.url}  ports {ports} (bus +10000)  logs {cfg_dir}/<port>/redis.log"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--redis-cluster",
        action="store_true",
        help="up: also start a 3-primary Redis Cluster (ports from SEGSTREAM_DEVSTACK_CLUSTER_PORT, 7000)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            stack = up()
            print(_report(stack))
            if args.redis_cluster:
                cfg = stack.config
                print(_cluster_report(redis_cluster.up(cfg), str(cfg.cluster_dir)))
        elif args.command == "down":
            stopped = down()
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        else:
            st = status()
            print(_report(st))
            cluster = redis_cluster.status(st.config)
            if any(pid is not None for pid in cluster.pids) or args.redis_cluster:
                print(_cluster_report(cluster, str(st.config.cluster_dir)))
                if args.redis_cluster and not cluster.running:
                    return 3
            return 0 if st.running else 3
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
