"""`namespaces drop` and `replay --force` next to a worker running on the namespace: a worker whose keys
vanish is fenced out and claims its partitions again from no offset, rebuilding part of the dropped namespace
(or writing into the replay's build). Both refuse while a worker reports, write nothing, and proceed once it
stopped gracefully (found by review, 7 December 2026: `definitions apply` refused, these did not)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from streams import cli
from streams.bootstrap import ensure_topics
from streams.sample import generator as sample
from tests.integration.test_worker_kill import start_worker, until_caught_up_and_reporting
from tests.integration.worker_harness import make_settings, stored_customers
from tests.services import Services


def test_drop_and_a_forced_replay_refuse_a_namespace_a_worker_writes(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="live")
    spec = sample.SampleSpec(customers=40, days=60, seed=7)
    events = tmp_path / "events.jsonl"
    sample.write_jsonl(spec, events)

    async def feed() -> int:
        await ensure_topics(settings)
        return await sample.produce(spec, settings.kafka_bootstrap, settings.events_topic)

    assert asyncio.run(feed()) > 0
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SEGSTREAM_NAMESPACE", raising=False)  # the commands name it; `main` stays active
    drop = ["drop", "live"]
    replay = ["replay", str(events), "--namespace", "live", "--force", "--no-progress"]
    replay += ["--output-dir", str(tmp_path)]

    worker = start_worker(settings)
    try:
        until_caught_up_and_reporting(settings, worker)
        stored = stored_customers(settings)
        assert stored
        for command in (drop, replay):
            capsys.readouterr()
            assert cli.main(command) == 3, command  # refused by a guard
            err = capsys.readouterr().err
            assert "workers are running on namespace 'live'" in err and len(err.splitlines()) == 1, err
            assert stored_customers(settings) == stored, "a refused command writes nothing"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert cli.main(replay) == 0, "a gracefully stopped worker does not hold a replay back"
    assert cli.main(drop) == 0
    assert stored_customers(settings) == {}
