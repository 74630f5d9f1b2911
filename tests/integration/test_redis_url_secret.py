"""A Redis password never reaches a log line or an error message, whichever way the URL carries it: redis-py
also takes it from the query string (`?password=`), and the one-line errors of an unreachable Redis and the
worker's start-up lines printed it in clear there."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

SECRET = "s3cretPW"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("form", ["userinfo", "query"])
@pytest.mark.parametrize("argv", [["worker"], ["doctor"], ["customer", "c000001"]])
def test_an_unreachable_redis_is_named_without_its_password(
    env: dict[str, str], form: str, argv: list[str]
) -> None:
    port = free_port()  # nothing listens there: the command reports Redis unreachable
    url = {
        "userinfo": f"redis://app:{SECRET}@127.0.0.1:{port}/0",
        "query": f"redis://127.0.0.1:{port}/0?username=app&password={SECRET}",
    }[form]
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *argv],
        env={**env, "SEGSTREAM_REDIS_URL": url, "SEGSTREAM_NAMESPACE": "main"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 4, out
    assert f"127.0.0.1:{port}" in out  # the Redis is named...
    assert SECRET not in out, out  # ...without its password
