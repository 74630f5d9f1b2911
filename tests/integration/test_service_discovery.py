"""How the tests find their services, seen as `make test` shows it: a wrong setting is one `ERROR:` line and
pytest's usage exit code (4), never an INTERNALERROR traceback nor a run against other services."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import Services

ROOT = Path(__file__).resolve().parents[2]
SMOKE = "tests/integration/test_smoke_redis.py"  # any test that needs the services


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port someone else listens on: a local stack asked to use it refuses at once, starting nothing."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _pytest(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """An inner pytest run on one test file; where it would start a local stack, that stack refuses."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", SMOKE],
        cwd=ROOT,
        env={
            **env,
            "PYTHONPATH": str(ROOT),
            "SEGSTREAM_NO_DOCKER": "1",
            "SEGSTREAM_DEVSTACK_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_only_the_redis_url_given_is_refused_not_replaced_by_the_local_stack(
    services: Services, held_port: int, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SEGSTREAM_KAFKA_BOOTSTRAP"}
    env["SEGSTREAM_REDIS_URL"] = services.redis_url
    env["SEGSTREAM_DEVSTACK_REDIS_PORT"] = env["SEGSTREAM_DEVSTACK_KAFKA_PORT"] = str(held_port)
    done = _pytest(env, tmp_path)
    assert "INTERNALERROR" not in done.stdout + done.stderr
    assert done.returncode == 4, done.stdout[-2000:]
    assert "ERROR: SEGSTREAM_REDIS_URL is set but SEGSTREAM_KAFKA_BOOTSTRAP is not" in done.stderr


def test_an_address_that_does_not_answer_is_one_error_line(services: Services, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = int(sock.getsockname()[1])  # nothing listens once the socket is closed
    env = {
        **os.environ,
        "SEGSTREAM_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "SEGSTREAM_REDIS_URL": f"redis://:secret@127.0.0.1:{closed}/0",
    }
    done = _pytest(env, tmp_path)
    assert "INTERNALERROR" not in done.stdout + done.stderr
    assert done.returncode == 4, done.stdout[-2000:]
    assert f"ERROR: SEGSTREAM_REDIS_URL=redis://:***@127.0.0.1:{closed}/0 does not answer:" in done.stderr
    assert "secret" not in done.stdout + done.stderr


def test_a_redis_cluster_url_that_does_not_answer_is_one_error_line(
    services: Services, tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = int(sock.getsockname()[1])
    env = {
        **os.environ,
        "SEGSTREAM_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "SEGSTREAM_REDIS_URL": services.redis_url,
        "SEGSTREAM_TEST_REDIS": "cluster",
        "SEGSTREAM_REDIS_CLUSTER_URL": f"redis+cluster://127.0.0.1:{closed}",
    }
    done = _pytest(env, tmp_path)
    assert "INTERNALERROR" not in done.stdout + done.stderr
    assert done.returncode == 4, done.stdout[-2000:]
    assert f"ERROR: the Redis Cluster at redis+cluster://127.0.0.1:{closed} does not answer:" in done.stderr
