"""One rewrite of a namespace at a time, on the real Redis: a replay holds the namespace's lease while it
runs, so a second replay, even with --force, and `namespaces drop` are refused (exit 3) instead of dropping
the namespace under it; a killed replay's lease lapses; a replay that lost its lease stops.

The first replay is held at a hook just before it reads its source (the await where a second one would
interleave), in a thread of its own, while the second command runs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.commands.core import AsyncScript

from streams import cli
from streams.replay import rebuild
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store import namespace_lease
from streams.store.connection import async_client
from streams.store.keys import building_key, lease_key
from streams.store.namespace_lease import LeaseHeld, leased
from tests.integration.worker_harness import make_settings
from tests.services import Services


class Held:
    """`rebuild.replay` held at its start until `go` is set; `reached` once a replay got there."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached, self.go = threading.Event(), threading.Event()
        real = rebuild.replay

        async def held(*args: Any, **kwargs: Any) -> Any:
            self.reached.set()
            while not self.go.is_set():  # cancellable, unlike a thread waiting on the event
                await asyncio.sleep(0.01)
            return await real(*args, **kwargs)

        monkeypatch.setattr(rebuild, "replay", held)

    def run(self, argv: list[str]) -> tuple[threading.Thread, list[int]]:
        code: list[int] = []
        thread = threading.Thread(target=lambda: code.append(cli.main(argv)), daemon=True)
        thread.start()
        assert self.reached.wait(30), "the first replay never reached its source"
        return thread, code


@pytest.fixture
def setup(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Settings, Path, redis.Redis]]:
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=20, days=30, seed=9), path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    client = redis.Redis.from_url(services.redis_url)
    try:
        yield settings, path, client
    finally:
        client.close()


def _replay(path: Path, namespace: str, *extra: str) -> list[str]:
    out = path.parent / "out"
    return ["replay", str(path), "--namespace", namespace, "--out-dir", str(out), "--no-progress", *extra]


def test_a_running_replay_is_neither_forced_over_nor_dropped(
    setup: tuple[Settings, Path, redis.Redis],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, path, client = setup
    assert cli.main(_replay(path, "spring")) == 0  # keys there: the next one needs --force
    before = sorted(client.scan_iter(match=f"{settings.key_prefix}:spring:*"))
    held = Held(monkeypatch)
    thread, code = held.run(_replay(path, "spring", "--force"))
    capsys.readouterr()
    try:
        assert cli.main(_replay(path, "spring", "--force")) == 3
        err = capsys.readouterr().err
        assert "being rewritten right now" in err and '"replay"' in err and "--force does not" in err, err
        assert cli.main(["drop", "spring"]) == 3
        assert "being rewritten right now" in capsys.readouterr().err
        assert client.get(building_key(settings.key_prefix, "spring")) is not None, "the drop left it"
    finally:
        held.go.set()
        thread.join(60)
    assert code == [0], capsys.readouterr().err
    assert client.get(lease_key(settings.key_prefix, "spring")) is None, "released at the end"
    assert client.get(building_key(settings.key_prefix, "spring")) is None, "complete"
    assert sorted(client.scan_iter(match=f"{settings.key_prefix}:spring:*")) == before, "the same rebuild"
    assert cli.main(["drop", "spring"]) == 0, "free again"


def test_a_killed_replays_lease_lapses_and_a_failed_one_lets_it_go(
    setup: tuple[Settings, Path, redis.Redis], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, path, client = setup
    key = lease_key(settings.key_prefix, "autumn")
    client.set(key, b'{"replay": "killed.jsonl", "pid": 7} 0123', px=400)  # as a kill -9 leaves it
    assert cli.main(_replay(path, "autumn", "--force")) == 3
    assert "killed.jsonl" in capsys.readouterr().err
    time.sleep(0.5)
    assert cli.main(_replay(path, "autumn", "--force")) == 0, capsys.readouterr().err
    assert cli.main(_replay(path, "winter", "--until", "2000-01-01T00:00:00Z")) == 2  # before its events
    assert client.get(lease_key(settings.key_prefix, "winter")) is None, "let go on the way out"
    assert cli.main(_replay(path, "winter", "--force")) == 0


def _running(
    setup: tuple[Settings, Path, redis.Redis], monkeypatch: pytest.MonkeyPatch, namespace: str
) -> tuple[Held, threading.Thread, list[int], str]:
    """A replay into `namespace` held before its source, renewing its lease every 0.05 s; its lease key."""
    settings, path, _ = setup
    monkeypatch.setattr(namespace_lease, "RENEW_S", 0.05)
    held = Held(monkeypatch)
    thread, code = held.run(_replay(path, namespace))
    return held, thread, code, lease_key(settings.key_prefix, namespace)


def test_a_replay_that_lost_its_lease_stops_and_leaves_the_namespace_incomplete(
    setup: tuple[Settings, Path, redis.Redis],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, _, client = setup
    held, thread, code, key = _running(setup, monkeypatch, "summer")
    assert client.get(key) is not None
    client.set(key, b"another replay, after ours lapsed")  # what a lapse and another's take leave
    thread.join(30)
    held.go.set()
    assert code == [3]
    assert "lease lapsed and another replay or drop took it" in capsys.readouterr().err
    assert client.get(key) == b"another replay, after ours lapsed", "theirs, untouched"
    assert client.get(building_key(settings.key_prefix, "summer")) is not None, "left incomplete"
    assert cli.main(["promote", "summer"]) == 3


def test_a_lapsed_lease_nobody_took_is_taken_again_and_a_failed_renewal_is_retried(
    setup: tuple[Settings, Path, redis.Redis],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, client = setup
    failures = [AttributeError("'NoneType' object has no attribute 'send'")]  # a torn connection, once
    real_call = AsyncScript.__call__

    async def renew_failing_once(self: AsyncScript, *args: Any, **kwargs: Any) -> Any:
        if self.script == namespace_lease._RENEW and failures:
            raise failures.pop()
        return await real_call(self, *args, **kwargs)

    monkeypatch.setattr(AsyncScript, "__call__", renew_failing_once)
    held, thread, code, key = _running(setup, monkeypatch, "spring2")
    token = client.get(key)
    client.delete(key)  # lapsed (its loop blocked a minute, say), and nobody took it
    deadline = time.monotonic() + 10
    while client.get(key) != token and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.get(key) == token, "taken again by its holder"
    assert not failures, "the renewal that failed was tried again"
    held.go.set()
    thread.join(60)
    assert code == [0], capsys.readouterr().err
    assert client.get(key) is None


def test_a_lease_taken_and_released_by_another_while_ours_lapsed_stops_the_replay(
    setup: tuple[Settings, Path, redis.Redis],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, client = setup
    held, thread, code, key = _running(setup, monkeypatch, "autumn2")
    client.delete(key, key + ":holder")  # lapsed, then a drop took it and ended within one renewal
    thread.join(30)
    held.go.set()
    assert code == [3], capsys.readouterr().err
    assert client.get(key) is None, "nobody's now: not taken back"


def test_a_take_resent_by_a_cluster_client_is_ours(
    setup: tuple[Settings, Path, redis.Redis], services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _, client = setup
    real_call = AsyncScript.__call__

    async def resent(self: AsyncScript, *args: Any, **kwargs: Any) -> Any:  # ran, reply lost, sent again
        if self.script == namespace_lease._TAKE:
            await real_call(self, *args, **kwargs)
        return await real_call(self, *args, **kwargs)

    async def scenario() -> None:
        c = async_client(services.redis_url)
        try:
            monkeypatch.setattr(AsyncScript, "__call__", resent)
            async with leased(c, settings.key_prefix, "twice", b'{"replay": "x"}'):
                assert client.get(lease_key(settings.key_prefix, "twice")) is not None
            monkeypatch.setattr(AsyncScript, "__call__", real_call)
            async with leased(c, settings.key_prefix, "twice", b'{"replay": "x"}'):
                with pytest.raises(LeaseHeld):  # another holder is still refused
                    async with leased(c, settings.key_prefix, "twice", b'{"replay": "y"}'):
                        pass
        finally:
            await c.aclose()

    asyncio.run(scenario())
    key = lease_key(settings.key_prefix, "twice")
    assert client.get(key) is None and client.get(key + ":holder") is None, "both let go"
