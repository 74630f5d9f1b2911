"""A private redis-server per test, for the tests that hang, kill and restart Redis."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from streams.store.connection import sync_client
from tests.services import Services

ROOT = Path(__file__).resolve().parents[2]


def _worker_number() -> int:
    """N of pytest-xdist's worker gwN (0 outside xdist): the private servers of each worker take ports of
    their own, as its tests run beside the other workers' tests."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(name[2:]) if name.startswith("gw") and name[2:].isdigit() else 0


PORT = 16479 + _worker_number()


def start_redis(data: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(PORT),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = redis.Redis(port=PORT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    raise AssertionError("private redis-server did not start")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    if not (shutil.which("redis-server") or os.path.exists("/usr/bin/redis-server")):
        pytest.skip("needs the redis-server binary to run a private server")
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        procs.append(start_redis(tmp_path))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def env(services: Services, redis_prefix: str, topic_name: Callable[[str], str]) -> dict[str, str]:
    """For `segstream` subprocesses: the real services, this test's key prefix, topics and group (never the
    shared default group), a short start-up wait, no API keys."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SEGSTREAM_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "SEGSTREAM_REDIS_URL": services.redis_url,
        "SEGSTREAM_KEY_PREFIX": redis_prefix.rstrip(":"),
        "SEGSTREAM_EVENTS_TOPIC": topic_name("events"),
        "SEGSTREAM_TRANSITIONS_TOPIC": topic_name("transitions"),
        "SEGSTREAM_DLQ_TOPIC": topic_name("dlq"),
        "SEGSTREAM_GROUP_ID": topic_name("group"),
        "SEGSTREAM_CONNECT_TIMEOUT_S": "1",
        "SEGSTREAM_API_KEYS": "",
    }


@pytest.fixture
def client(services: Services) -> Iterator[redis.Redis]:
    """A text client of the real Redis (surrogateescape: keys of any bytes read back)."""
    c = sync_client(services.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    yield c
    c.close()


OWN_PORTS = range(6640 + 20 * _worker_number(), 6660 + 20 * _worker_number())


def _free_port() -> int:
    for port in OWN_PORTS:
        try:
            redis.Redis(port=port, socket_connect_timeout=0.2).ping()
        except redis.ConnectionError:
            return port
    raise AssertionError("no free port for a private redis-server")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[..., redis.Redis]]:
    """Start a redis-server of this test's own (extra `--name value` settings); its client is returned."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        pytest.skip("needs the redis-server binary")
    procs: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> redis.Redis:
        port, data = _free_port(), tmp_path / f"redis-{len(procs)}"
        data.mkdir()
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", ""]
        procs.append(subprocess.Popen([*args, *extra], stdout=subprocess.DEVNULL))
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                client.ping()
                return client
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()
