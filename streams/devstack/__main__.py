"""Command line of the local stack: up | down | status."""

from __future__ import annotations

import argparse
import sys

from streams.devstack import StackError, Status, down, kafka_version, status, up


def _report(st: Status) -> str:
    cfg = st.config
    kafka_state = f"running (pid {st.kafka_pid})" if st.kafka_pid else "stopped"
    redis_state = f"running (pid {st.redis_pid})" if st.redis_pid else "stopped"
    return (
        f"kafka  {kafka_state:<22} Apache Kafka {kafka_version()} (KRaft) at {cfg.kafka_bootstrap}"
        f"  log {cfg.kafka_dir / 'server.log'}\n"
        f"redis  {redis_state:<22} {cfg.redis_url}  log {cfg.redis_dir / 'redis.log'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            print(_report(up()))
        elif args.command == "down":
            stopped = down()
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        else:
            st = status()
            print(_report(st))
            return 0 if st.running else 3
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
