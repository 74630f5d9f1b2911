"""`make demo` (streams/demo.py), the README's first command: what it says when it cannot run."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from streams import demo
from streams.settings import Settings


def test_a_local_stack_that_cannot_start_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Redis already on 6379 (Debian's redis-server service) made `make demo` end in a traceback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = str(sock.getsockname()[1])
        monkeypatch.setenv("SEGSTREAM_DEVSTACK_DIR", str(tmp_path))
        for name in ("REDIS", "KAFKA", "CONTROLLER"):
            monkeypatch.setenv(f"SEGSTREAM_DEVSTACK_{name}_PORT", port)
        assert demo.main([]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"segstream demo: the local stack cannot start: port {port} is taken")
    assert "SEGSTREAM_DEVSTACK_REDIS_PORT" in err and err.count("\n") == 1


def test_the_look_up_hint_names_the_demos_redis() -> None:
    """With the stack on SEGSTREAM_DEVSTACK_REDIS_PORT=6492 the printed command, run as printed, asked the
    Redis on 6379 (someone else's, or none) and answered "unknown namespace 'demo-...'", exit code 3."""
    settings = Settings(
        redis_url="redis://127.0.0.1:6492/0", namespace="demo-x", events_topic="demo-x.events"
    )
    assert demo.lookup_hint(settings) == (
        "look one up: SEGSTREAM_REDIS_URL=redis://127.0.0.1:6492/0 SEGSTREAM_NAMESPACE=demo-x "
        "SEGSTREAM_EVENTS_TOPIC=demo-x.events .venv/bin/segstream customer c000042"
    )
