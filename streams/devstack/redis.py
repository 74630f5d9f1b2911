"""Redis from Debian's redis-server package, on loopback, AOF everysec into the stack's folder."""

from __future__ import annotations

import time
from pathlib import Path

from streams.devstack.config import StackConfig
from streams.devstack.debian import program
from streams.devstack.kafka import StackError, port_open
from streams.devstack.process import alive, mark_start, read_pid, since_start, spawn
from streams.store.tuning import LISTPACK_VALUE


def binary(cfg: StackConfig) -> str:
    """Find redis-server, installing Debian's package when we are allowed to (root, apt, not disabled)."""
    advice = ", or point the tests at a server with SEGSTREAM_REDIS_URL"
    return program("redis-server", "redis-server", "/usr/bin/redis-server", cfg.install_missing, advice)


def server_argv(cfg: StackConfig, port: int, data: Path, *extra: str) -> list[str]:
    """redis-server on loopback, AOF everysec into `data`: the single server and every cluster node alike."""
    return [
        binary(cfg),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--protected-mode",
        "yes",
        "--dir",
        str(data),
        *extra,
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--loglevel",
        "notice",
        "--hash-max-listpack-value",  # customer hashes stay compact listpacks (streams/store/tuning.py)
        str(LISTPACK_VALUE),
    ]


def start(cfg: StackConfig) -> int:
    pid_file = cfg.redis_dir / "redis.pid"
    pid = read_pid(pid_file)
    if pid is not None:
        return pid
    if port_open(cfg.redis_port):
        raise StackError(
            f"port {cfg.redis_port} is taken by a process the local stack did not start; "
            "stop it or set SEGSTREAM_DEVSTACK_REDIS_PORT"
        )
    data = cfg.redis_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    argv = server_argv(cfg, cfg.redis_port, data)
    mark_start(cfg.redis_dir / "redis.log")
    return spawn(argv, cfg.redis_dir / "redis.log", pid_file, marker=str(data))


def wait_ready(cfg: StackConfig, pid: int, timeout: float = 30.0) -> None:
    """Ready means PING answers. "Exited" is judged on the pid we spawned, not on the pid file: right after
    the spawn, /proc/<pid>/cmdline may still be the forking Python's (exec not done yet), which `read_pid`
    takes for a stranger's process, and a healthy start was reported as "exited during start"."""
    import redis as redis_client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            # its warnings ("# Bad file format reading the append only file ...: use redis-check-aof --fix")
            warnings = [line for line in since_start(cfg.redis_dir / "redis.log") if " # " in line]
            raise StackError(
                f"redis-server exited during start; see {cfg.redis_dir / 'redis.log'}:\n"
                + "\n".join(warnings[-5:])
            )
        try:
            if redis_client.Redis.from_url(cfg.redis_url, socket_timeout=1).ping():
                return
        except redis_client.RedisError:
            pass
        time.sleep(0.1)
    raise StackError(f"redis-server did not answer PING within {timeout:.0f}s")
