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


def test_the_demo_gives_up_on_a_worker_that_applies_nothing() -> None:
    """A worker stalled (Redis refusing writes) kept `make demo` waiting for ever, saying nothing."""
    now = [0.0]
    progress = iter([0, 10, 10, 10, 10, 10, 10, 10])

    def tick() -> None:
        now[0] += 50

    failed = demo.wait_applied(
        100, lambda: next(progress), lambda: True, lambda d: None, 120, lambda: now[0], tick
    )
    assert failed == "the worker applied nothing for 120 s (10 of 100 events; its log is above)"
    assert now[0] == 200  # 10 applied at 50 s: given up 120 s after, not 120 s after the start


def test_the_demo_waits_while_the_worker_applies_and_says_when_it_stopped() -> None:
    now, done = [0.0], iter([0, 30, 60, 90, 100])
    tick = lambda: now.__setitem__(0, now[0] + 100)  # noqa: E731  slower than the stall limit, but moving
    assert (
        demo.wait_applied(100, lambda: next(done), lambda: True, lambda d: None, 120, lambda: now[0], tick)
        is None
    )
    stopped = demo.wait_applied(100, lambda: 5, lambda: False, lambda d: None)
    assert stopped == "the worker stopped unexpectedly (its log is above)"
