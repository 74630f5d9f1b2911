"""`definitions diff|apply` walk the partitions 0..SEGSTREAM_TOPIC_PARTITIONS-1 and look for each customer
in its partition's keys. Run from a shell with another count than the namespace was built for (the default 4
against workers of 2 or 12), apply moved the customers of the partitions it walked only, recorded the new
version as the whole namespace's and exited 0: the others stayed under the old definitions, their segments
unmoved and no transition published, until an event or a due time of theirs came (a lost customer has none);
diff predicted from part of the population. The namespace records its partition count (found in review,
6 December 2026): both refuse another one with exit 3, writing nothing, as the worker does."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from streams import cli
from streams.sample import generator as sample
from tests.integration.replay_helpers import dump_namespace, replay_file
from tests.integration.test_definitions_change import changed_definitions
from tests.integration.worker_harness import make_settings
from tests.services import Services


def test_definitions_diff_and_apply_refuse_a_namespace_built_for_another_partition_count(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=40, days=120, seed=8), path)
    built = make_settings(services, topic_name, redis_prefix, topic_partitions=4)
    asyncio.run(replay_file(built, path, "rebuilt", tmp_path))
    before = dump_namespace(built, "rebuilt")
    new_path = tmp_path / "new.yaml"
    new_path.write_text(yaml.safe_dump(changed_definitions(random.Random(3))))
    shell = built.model_copy(update={"topic_partitions": 2})  # the shell's count is not the namespace's
    for name, value in shell.as_environment({}).items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()

    for action in (["diff"], ["apply", "--no-emit"]):
        command = ["definitions", action[0], str(new_path), "--namespace", "rebuilt", *action[1:]]
        assert cli.main(command) == 3, f"definitions {action[0]} is refused by a guard"
        err = capsys.readouterr().err
        assert "built for 4 partitions" in err and "SEGSTREAM_TOPIC_PARTITIONS is 2" in err, err
        assert len(err.splitlines()) == 1, err
    assert dump_namespace(built, "rebuilt") == before, "nothing written"

    for name, value in built.as_environment({}).items():  # with the namespace's count: applied
        monkeypatch.setenv(name, value)
    assert cli.main(["definitions", "apply", str(new_path), "--namespace", "rebuilt", "--no-emit"]) == 0
