"""`python -m tests.chaos`: run the chaos scenarios on a private stack, print a row per run."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path

from tests.chaos import report
from tests.chaos.runner import Row, run_scenario
from tests.chaos.scenarios import CLUSTER_ONLY, NAMES, suite
from tests.chaos.stack import REPO, PrivateStack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument(
        "--scenarios", default=",".join(NAMES), help=f"comma-separated (default all: {','.join(NAMES)})"
    )
    parser.add_argument(
        "--seeds", type=int, default=5, help="seeds of rolling_restarts in the full run (default 5)"
    )
    parser.add_argument(
        "--reduced", action="store_true", help="the CI set: smaller logs, one seed (a few minutes)"
    )
    parser.add_argument(
        "--report", type=Path, help="refresh the results table of this file (docs/reliability.md)"
    )
    parser.add_argument(
        "--dir", type=Path, default=REPO / ".chaos", help="stack, logs and runs (default .chaos)"
    )
    parser.add_argument("--kafka-port", type=int, default=19092)
    parser.add_argument("--controller-port", type=int, default=19093)
    parser.add_argument("--redis-port", type=int, default=16379)
    parser.add_argument("--keep-stack", action="store_true", help="leave the private stack running")
    args = parser.parse_args(argv)
    # SIGTERM and SIGINT (ignored by shells in background jobs) stop the run the same way: the scenario kills
    # its workers, the private stack is stopped.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _interrupt)
    names = tuple(n.strip() for n in args.scenarios.split(",") if n.strip())
    scenarios = suite(names, args.seeds, args.reduced)
    stack = PrivateStack.create(args.dir / "stack", args.kafka_port, args.controller_port, args.redis_port)
    if names == ("replicated_broker_kill9",):  # 3 brokers of our own on 29292-29294, SEGSTREAM_REDIS_URL
        from tests.chaos.cluster_stack import ClusterStack

        stack = ClusterStack.create_cluster(args.dir / "cluster")
    elif names == ("redis_failover",):  # a broker on 29492, 6 Redis Cluster nodes on 21100-21105
        from tests.chaos.redis_cluster_stack import RedisClusterStack

        stack = RedisClusterStack.create_failover(args.dir / "redis-cluster")
    elif set(names) & set(CLUSTER_ONLY):
        parser.error(f"run each of {', '.join(CLUSTER_ONLY)} on its own (each needs a stack of its own)")
    started = time.monotonic()
    rows: list[Row] = []
    print(
        f"chaos: {len(scenarios)} runs on a private stack ({stack.kafka_bootstrap}, {stack.redis_url})",
        flush=True,
    )
    stack.start()
    try:
        for scenario in scenarios:
            row = asyncio.run(run_scenario(scenario, stack, args.dir / "runs"))
            rows.append(row)
            print(row.line(), flush=True)
    finally:
        if not args.keep_stack:
            stack.stop()
    elapsed = time.monotonic() - started
    bad = [r for r in rows if not r.held]
    print(f"chaos: {len(rows) - len(bad)} of {len(rows)} held in {elapsed / 60:.1f} min", flush=True)
    if args.report:
        command = "python -m tests.chaos" + (" --reduced" if args.reduced else f" --seeds {args.seeds}")
        if names != NAMES:
            command += f" --scenarios {','.join(names)}"
        report.write(args.report, rows, command, elapsed)
    return 1 if bad else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


if __name__ == "__main__":
    sys.exit(main())
