"""N `segstream worker` processes in one consumer group, for the scale and rebalance benchmarks."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.bench_worker import ROOT, WORKER
from streams.bootstrap import keyspace, producer
from streams.settings import Settings

__all__ = ["Frozen", "Group", "group_state", "send_backlog", "wait_stable"]

BREATHE_S = 4.0


@dataclass
class Group:
    """N worker processes of one consumer group on one key prefix; their stderr kept in `logs`."""

    settings: Settings
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self) -> subprocess.Popen[bytes]:
        env = self.settings.as_environment()
        env["PYTHONPATH"] = str(ROOT)
        log = (self.logs / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, *WORKER], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log
        )
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def stop(self) -> None:
        for proc in self.alive():
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def group_state(settings: Settings) -> tuple[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security())
    await admin.start()
    try:
        reply = (await admin.describe_consumer_groups([settings.group_id]))[0].to_object()
    finally:
        await admin.close()
    found = reply["groups"][0]
    return str(found["state"]), len(found["members"])


def wait_stable(group: Group, client: redis.Redis, members: int, timeout: float = 120.0) -> float:
    """Until the group is Stable with `members` members and every partition is claimed in Redis (taken);
    returns how long that took."""
    started = time.monotonic()
    keys = keyspace(group.settings)
    metas = [keys.partition_meta(p) for p in range(group.settings.topic_partitions)]
    while True:
        if len(group.alive()) < members:
            raise SystemExit(f"a worker exited early; see {group.logs}")
        state, count = asyncio.run(group_state(group.settings))
        if state == "Stable" and count == members and all(client.hexists(m, "fence") for m in metas):
            time.sleep(1.0)  # the takes of the last assignment (claim, seek) finish
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise SystemExit(
                f"group not stable with {members} members after {timeout:.0f}s ({state}, {count})"
            )
        time.sleep(0.25)


async def send_backlog(
    settings: Settings, records: list[tuple[bytes | None, bytes]], breathe: Callable[[], None]
) -> None:
    """Produce `records` in acked chunks of 2,000, calling `breathe` after each (see `Frozen`)."""
    prod = producer(settings)
    await prod.start()
    try:
        for i in range(0, len(records), 2000):
            chunk = records[i : i + 2000]
            await asyncio.gather(*[await prod.send(settings.events_topic, v, key=k) for k, v in chunk])
            breathe()
    finally:
        await prod.stop()


@dataclass
class Frozen:
    """The workers stopped (SIGSTOP) while the backlog is produced, so they all start on it at once, in a
    stable group: consuming while it is produced would measure the producer's share of the broker too, and
    with 8 workers most events were applied before production ended. Every `BREATHE_S` they run for 0.5 s
    (a heartbeat: the group's session timeout is 10 s)."""

    procs: list[subprocess.Popen[bytes]]
    since: float = 0.0

    def __enter__(self) -> Frozen:
        self._signal(signal.SIGSTOP)
        return self

    def __exit__(self, *exc: object) -> None:
        self._signal(signal.SIGCONT)

    def breathe(self) -> None:
        if time.monotonic() - self.since > BREATHE_S:
            self._signal(signal.SIGCONT)
            time.sleep(0.5)
            self._signal(signal.SIGSTOP)

    def _signal(self, sig: signal.Signals) -> None:
        for proc in self.procs:
            proc.send_signal(sig)
        self.since = time.monotonic()
