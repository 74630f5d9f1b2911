"""`replay kafka:TOPIC` keeps the topic's partitions and offsets, so the topic must have
SEGSTREAM_TOPIC_PARTITIONS partitions, as the worker requires at its start. Another count is refused before
the namespace is touched (exit 3, as the worker), so a retry with the right setting works (found in review,
6 December 2026: with fewer partitions the replay ended "successfully", every record whose customer the
setting puts in another partition a dead letter, and the namespace was promotable without them; with more,
it stopped half way, leaving a partial namespace that refused the retry)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from streams import cli
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.namespaces import is_empty
from tests.integration.test_replay import produce_like_the_file
from tests.integration.worker_harness import make_settings
from tests.services import Services


def _namespace_is_empty(settings: Settings, namespace: str) -> bool:
    async def check() -> bool:
        client = async_client(settings.redis_url)
        try:
            return await is_empty(client, settings.key_prefix, namespace)
        finally:
            await client.aclose()

    return asyncio.run(check())


@pytest.mark.parametrize(("topic_has", "configured", "processes"), [(2, 4, 1), (4, 2, 1), (4, 2, 2)])
def test_a_topic_of_another_partition_count_is_refused_before_any_write(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    topic_has: int,
    configured: int,
    processes: int,
) -> None:
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=30, days=60, seed=4), path)
    lines = [x for x in path.read_bytes().splitlines() if x.strip()]
    made = make_settings(services, topic_name, redis_prefix, topic_partitions=topic_has)
    asyncio.run(produce_like_the_file(made, lines))  # the topic, made with `topic_has` partitions

    settings = made.model_copy(update={"topic_partitions": configured})
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    replay = ["replay", f"kafka:{settings.events_topic}", "--namespace", "rebuilt", "--no-progress"]
    replay += ["--processes", str(processes), "--output-dir", str(tmp_path)]
    assert cli.main(replay) == 3
    err = capsys.readouterr().err
    assert f"has {topic_has} partitions but SEGSTREAM_TOPIC_PARTITIONS is {configured}" in err
    assert _namespace_is_empty(settings, "rebuilt"), "nothing written: a retry needs no --force"

    for name, value in made.as_environment({}).items():  # the retry, with the topic's count
        monkeypatch.setenv(name, value)
    assert cli.main(replay) == 0
