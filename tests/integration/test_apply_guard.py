"""`definitions apply` next to a running worker would fence it out of its partitions, which it then pauses
until reassigned: apply refuses while a worker reports (every second, busy or idle) and proceeds at once when
the worker has stopped gracefully (it says so in the metrics hash)."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
import yaml

from segmentation import Definitions
from segmentation.state_mapping import state_from_mapping
from streams import cli
from streams.bootstrap import ensure_topics, keyspace
from streams.sample import generator as sample
from streams.store.connection import sync_client
from tests.integration.test_definitions_change import changed_definitions
from tests.integration.test_worker_kill import start_worker, until_caught_up_and_reporting
from tests.integration.worker_harness import make_settings, stored_customers
from tests.services import Services


def test_apply_refuses_while_a_worker_runs_and_proceeds_once_it_stopped(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="live")
    spec = sample.SampleSpec(customers=60, days=120, seed=5)

    async def feed() -> int:
        await ensure_topics(settings)
        return await sample.produce(spec, settings.kafka_bootstrap, settings.events_topic)

    assert asyncio.run(feed()) > 0
    new_path = tmp_path / "new.yaml"
    new_path.write_text(yaml.safe_dump(changed_definitions(random.Random(3))))
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    apply = ["definitions", "apply", str(new_path), "--no-emit"]
    client = sync_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
    metrics_key = keyspace(settings).metrics()

    def reported_at() -> float:
        row = cast(dict[str, str], client.hgetall(metrics_key))
        return max(float(v) for k, v in row.items() if k.endswith(":updated_at"))

    def versions() -> set[str]:
        return {
            str(state_from_mapping(row).definitions_version) for row in stored_customers(settings).values()
        }

    worker = start_worker(settings)
    try:
        until_caught_up_and_reporting(settings, worker)
        idle_since = reported_at()
        time.sleep(2.5)
        assert reported_at() >= idle_since + 1.5, "an idle worker keeps reporting (heartbeat)"
        capsys.readouterr()
        assert cli.main(apply) == 3  # refused by a guard
        err = capsys.readouterr().err
        assert "workers are running on namespace 'live'" in err and len(err.splitlines()) == 1
        assert versions() == {Definitions.default().version}, "a refused apply writes nothing"

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        client.close()
    assert cli.main(apply) == 0, "a gracefully stopped worker does not hold apply back"
    assert versions() == {"test-2"}
