"""A namespace another replay has marked as being built is refused unless forced, on the real Redis.

The mark (`<prefix>:<namespace>:building`) is a key of the namespace, so a second replay finds it "not
empty"; but one that looked before the first replay set its mark, then set its own, went on: the two would
build the namespace at once, fence each other out of partitions, and the one left would resume after the
offsets the other committed, even of another file. The interleaving is forced at the await between the
second replay's look and its mark.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streams import cli
from streams.sample import generator as sample
from streams.store import namespaces
from streams.store.connection import async_client
from streams.store.keys import building_key
from streams.store.namespaces import NamespaceError, prepare_namespace
from tests.integration.worker_harness import make_settings
from tests.services import Services

FIRST, SECOND = b'{"replay": "first.jsonl", "pid": 1}', b'{"replay": "second.jsonl", "pid": 2}'


@pytest.mark.cluster
def test_a_replay_marked_between_our_look_and_our_mark_is_refused_unless_forced(
    services: Services, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    looked = namespaces.is_empty

    async def client_and_run(force: bool) -> tuple[bool, bytes | None]:
        client = async_client(services.redis_url)
        mark = building_key(redis_prefix, "twice")

        async def look_then_let_the_first_in(c: Any, prefix: str, name: str) -> bool:
            empty = await looked(c, prefix, name)  # empty: nobody has marked it yet
            monkeypatch.setattr(namespaces, "is_empty", looked)  # the first replay looks as usual
            await prepare_namespace(client, redis_prefix, "twice", force=False, building=FIRST)
            return empty

        try:
            monkeypatch.setattr(namespaces, "is_empty", look_then_let_the_first_in)
            try:
                await prepare_namespace(client, redis_prefix, "twice", force=force, building=SECOND)
                refused = False
            except NamespaceError as exc:
                assert "first.jsonl" in str(exc) and exc.exit_code == 3, str(exc)
                refused = True
            finally:
                monkeypatch.setattr(namespaces, "is_empty", looked)
            stored: bytes | None = await client.get(mark)  # type: ignore[assignment]
            await client.delete(mark)
            return refused, stored
        finally:
            await client.aclose()

    assert asyncio.run(client_and_run(force=False)) == (True, FIRST), "refused, the first one's mark put back"
    assert asyncio.run(client_and_run(force=True)) == (False, SECOND), "forced: the second one's from now on"


def test_the_command_refuses_a_mark_left_on_an_empty_namespace_and_forced_replays(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=5, days=10, seed=4), path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)

    async def leave_a_mark() -> None:
        client = async_client(services.redis_url)
        try:
            await client.set(building_key(settings.key_prefix, "left"), FIRST)
        finally:
            await client.aclose()

    asyncio.run(leave_a_mark())
    argv = ["replay", str(path), "--namespace", "left", "--out-dir", str(tmp_path), "--no-progress"]
    assert cli.main(argv) == 3
    err = capsys.readouterr().err
    assert "not empty (marked as being built" in err and "first.jsonl" in err and "--force" in err
    assert not list(tmp_path.glob("replay-left.summary.json")), "nothing replayed"
    assert cli.main([*argv, "--force"]) == 0
    assert (tmp_path / "replay-left.summary.json").exists()
