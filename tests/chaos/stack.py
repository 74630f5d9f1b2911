"""The suite's private Kafka + Redis (streams.devstack with its own folder and ports), and their faults."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streams.devstack import StackConfig, StackError, down, kafka, redis, up
from streams.devstack.process import alive, read_pid

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO / ".chaos" / "stack"


@dataclass
class PrivateStack:
    """A devstack of our own; `start()` wipes its data (never the jars) when it is not running."""

    cfg: StackConfig

    @classmethod
    def create(
        cls,
        root: Path = DEFAULT_DIR,
        kafka_port: int = 19092,
        controller_port: int = 19093,
        redis_port: int = 16379,
        heap: str = "384m",
    ) -> PrivateStack:
        return cls(StackConfig(root.resolve(), kafka_port, controller_port, redis_port, heap))

    @property
    def kafka_bootstrap(self) -> str:
        return self.cfg.kafka_bootstrap

    @property
    def redis_url(self) -> str:
        return self.cfg.redis_url

    def start(self) -> None:
        if read_pid(self.cfg.kafka_dir / "kafka.pid") is None:
            shutil.rmtree(self.cfg.kafka_dir / "data", ignore_errors=True)
        if read_pid(self.cfg.redis_dir / "redis.pid") is None:
            shutil.rmtree(self.cfg.redis_dir / "data", ignore_errors=True)
        up(self.cfg)

    def ensure_up(self) -> None:
        """After a scenario, whatever happened in it: the next one finds both services running."""
        up(self.cfg)

    def stop(self) -> None:
        down(self.cfg)

    def forget(self, key_prefix: str) -> None:
        """A scenario's keys after its comparison: kept here (this Redis is wiped on the next start)."""

    # -- faults -------------------------------------------------------------------------------------------
    def kill9_kafka(self) -> None:
        _kill9(self.cfg.kafka_dir / "kafka.pid", "kafka")

    def restart_kafka(self, timeout: float = 90.0) -> float:
        """Start the broker again (KRaft log recovery after kill -9) and wait until it answers; seconds."""
        started = time.monotonic()
        _retrying(lambda: kafka.wait_ready(self.cfg, kafka.start(self.cfg), timeout))
        return time.monotonic() - started

    def kill9_redis(self) -> None:
        _kill9(self.cfg.redis_dir / "redis.pid", "redis")

    def snapshot_redis(self) -> None:
        """Copy Redis's AOF folder as it is now (a copy taken mid-append ends in a truncated command, which
        Redis loads by default: aof-load-truncated)."""
        import redis as redis_client

        client = redis_client.Redis.from_url(
            self.redis_url, decode_responses=True, encoding_errors="surrogateescape"
        )
        try:  # a copy taken while Redis swaps AOF files could miss one: copy between rewrites
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                info = client.info("persistence")
                if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
                    break
                time.sleep(0.05)
        finally:
            client.close()
        snapshot = self.cfg.redis_dir / "data-snapshot"
        shutil.rmtree(snapshot, ignore_errors=True)
        shutil.copytree(self.cfg.redis_dir / "data", snapshot)

    def rewind_redis(self) -> None:
        """While Redis is down: put the snapshot back, as an OS crash with AOF everysec would (up to ~1-2 s
        of acknowledged writes gone)."""
        assert read_pid(self.cfg.redis_dir / "redis.pid") is None, "rewind only a stopped Redis"
        data = self.cfg.redis_dir / "data"
        shutil.rmtree(data)
        (self.cfg.redis_dir / "data-snapshot").rename(data)

    def restart_redis(self, timeout: float = 30.0) -> float:
        started = time.monotonic()
        _retrying(lambda: redis.wait_ready(self.cfg, redis.start(self.cfg), timeout))
        return time.monotonic() - started


def _retrying(start: Callable[[], None], attempts: int = 3) -> None:
    """devstack's readiness wait checks the pid file against /proc (command line or working folder); a
    process seen in between (redis-server renames itself before it enters its folder) reads as "exited
    during start" although it runs. Seen under load on restarts; `start` again finds it running."""
    for attempt in range(attempts):
        try:
            start()
            return
        except StackError:
            if attempt == attempts - 1:
                raise
            time.sleep(2)


def _kill9(pid_file: Path, name: str) -> None:
    pid = read_pid(pid_file)
    if pid is None:
        raise RuntimeError(f"the private {name} is not running")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):  # our child when this process started the stack
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    pid_file.unlink(missing_ok=True)  # stale: the next start must not trust it
