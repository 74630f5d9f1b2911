"""A replay never writes the active namespace: readers and the workers that follow `promote` read it while the
replay builds it, event by event, unswept (found in review, 6 December 2026: `replay --namespace main` on a
fresh install, where `main` is active and empty, was accepted and read as current half built)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streams import cli
from streams.sample import generator as sample
from streams.store.connection import sync_client
from streams.store.namespaces import pointer_key
from tests.integration.worker_harness import make_settings
from tests.services import Services


def test_a_replay_into_the_active_namespace_is_refused_before_any_write(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "events.jsonl.gz"
    sample.write_jsonl(sample.SampleSpec(customers=50, days=60, seed=3), path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    client = sync_client(settings.redis_url)
    try:
        for active, argv in (
            ("main", []),  # no pointer yet: `main` is the active one, empty
            ("spring", ["--force"]),  # promoted, and --force would drop it: refused as before
        ):
            if active != "main":
                assert cli.main(["promote", active, "--allow-empty"]) == 0
            capsys.readouterr()
            replay = ["replay", str(path), "--namespace", active, "--no-progress"]
            assert cli.main([*replay, "--output-dir", str(tmp_path), *argv]) == 3
            err = capsys.readouterr().err
            assert f"namespace {active!r} is the active one" in err and "promote" in err
            written = list(client.scan_iter(match=f"{settings.key_prefix}:{active}:*"))
            assert written == []
        client.delete(pointer_key(settings.key_prefix))
        assert (
            cli.main(
                ["replay", str(path), "--namespace", "fresh", "--no-progress", "--output-dir", str(tmp_path)]
            )
            == 0
        )
    finally:
        client.close()


def test_into_active_builds_an_empty_active_namespace_and_never_one_holding_keys(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A first import on a fresh install may build `main` in place (nothing reads it yet); once it holds
    keys, --into-active is refused, --force or not: a rebuild goes elsewhere, then `promote`."""
    path = tmp_path / "events.jsonl.gz"
    sample.write_jsonl(sample.SampleSpec(customers=50, days=60, seed=3), path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    replay = ["replay", str(path), "--namespace", "main", "--no-progress", "--output-dir", str(tmp_path)]
    client = sync_client(settings.redis_url)
    try:
        assert cli.main([*replay, "--into-active"]) == 0
        built = len(list(client.scan_iter(match=f"{settings.key_prefix}:main:*")))
        assert built > 50
        assert client.get(f"{settings.key_prefix}:main:building") is None  # complete: nothing marks it
        capsys.readouterr()
        assert cli.main([*replay, "--into-active", "--force"]) == 3
        assert "--into-active builds only an empty one" in capsys.readouterr().err
        assert len(list(client.scan_iter(match=f"{settings.key_prefix}:main:*"))) == built
    finally:
        client.close()
