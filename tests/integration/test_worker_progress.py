"""What the operator sees of a running worker (issue 17, item 2): a progress line every
SEGSTREAM_PROGRESS_INTERVAL_S, "caught up" once the backlog it found at start is applied, and with
`--log-format json` one JSON object per line; no "not the leader" alarm after it created its topics."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable

from streams.bootstrap import ensure_topics
from streams.sample import generator as sample
from streams.settings import Settings
from tests.integration.cli_process import cli_process
from tests.integration.worker_harness import make_settings
from tests.services import Services

SPEC = sample.SampleSpec(customers=60, days=120, seed=11, malformed_share=0.02, limit=3000)


def run_worker_until(
    settings: Settings, argv: list[str], wanted: Callable[[list[str]], bool], timeout: float = 60.0
) -> tuple[list[str], int]:
    """`segstream [argv] worker` as a process; its stderr lines until `wanted(lines)`, then SIGINT."""
    with cli_process(settings, [*argv, "worker"]) as (proc, lines):
        deadline = time.monotonic() + timeout
        while not wanted([line.rstrip("\n") for line in lines]):
            assert proc.poll() is None, f"worker exited early: {''.join(lines)}"
            assert time.monotonic() < deadline, f"not seen within {timeout} s: {''.join(lines)}"
            time.sleep(0.1)
    code = proc.returncode
    return [line.rstrip("\n") for line in lines], code


def produced(settings: Settings) -> int:
    asyncio.run(ensure_topics(settings))
    return asyncio.run(sample.produce(SPEC, settings.kafka_bootstrap, settings.events_topic))


def test_worker_logs_caught_up_and_progress_lines(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(
        services, topic_name, redis_prefix, mode="live", progress_interval_s=1.0, topic_partitions=2
    )
    count = produced(settings)

    def done(lines: list[str]) -> bool:
        return any("caught up" in x for x in lines) and sum("progress:" in x for x in lines) >= 2

    lines, code = run_worker_until(settings, [], done)
    assert code == 0
    caught = [x for x in lines if "caught up" in x]
    assert len(caught) == 1, lines  # once per partition set
    assert f"partitions 0,1 applied what they held at start ({count} events" in caught[0]
    progress = [x for x in lines if "progress:" in x]
    pattern = r"progress: \d+ events/s, lag \d+ over 2 partitions, \d+ transitions, \d+ dead letters in"
    assert all(re.search(pattern, x) for x in progress), progress
    assert re.search(r"lag 0 over 2 partitions", progress[-1]), progress  # all applied by then
    assert not [x for x in lines if "ERROR" in x or "NotLeaderForPartition" in x], lines
    assert f"stopped: {count} events" in lines[-1], lines  # SIGINT: a graceful stop, said last


def test_log_format_json_gives_one_object_per_line(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(
        services, topic_name, redis_prefix, mode="live", progress_interval_s=1.0, topic_partitions=2
    )
    # No topic yet: the worker creates them, and the broker's transient "not the leader" on its first
    # offset lookups (logged as ERROR by aiokafka, then retried) must not show.
    lines, code = run_worker_until(
        settings,
        ["--log-format", "json"],
        lambda lines: any("caught up" in x for x in lines) and any("progress:" in x for x in lines),
    )
    assert code == 0
    records = [json.loads(line) for line in lines if line.strip()]  # every line parses
    assert records and all(set(r) >= {"time", "level", "logger", "message"} for r in records)
    assert any(r["message"].startswith("caught up") and r["logger"] == "segstream.worker" for r in records)
    assert any(r["message"].startswith("progress:") and r["level"] == "INFO" for r in records)
    assert not [r for r in records if r["level"] == "ERROR" or "NotLeader" in r["message"]], records
