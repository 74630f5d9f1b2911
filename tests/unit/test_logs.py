"""Log lines: one JSON object per line in json format, and the new-topic "not the leader" noise dropped only
for topics this process has just created."""

from __future__ import annotations

import json
import logging

from streams.logs import JsonFormatter, NewTopicNoise


def record(
    message: str, level: int = logging.ERROR, name: str = "aiokafka.consumer.fetcher"
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_json_lines_carry_time_level_logger_message() -> None:
    line = JsonFormatter().format(
        record('caught up: "quoted"\nsecond line', logging.INFO, "segstream.worker")
    )
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "INFO" and parsed["logger"] == "segstream.worker"
    assert parsed["message"] == 'caught up: "quoted"\nsecond line'
    assert parsed["time"].endswith("+00:00")


def test_not_leader_noise_is_dropped_only_for_just_created_topics() -> None:
    noise = NewTopicNoise(window_s=60.0)
    noise.topics_created(["fresh"])
    fresh = (
        "Failed fetch offsets from 1: [Error 6] NotLeaderForPartitionError: "
        "TopicPartition(topic='fresh', partition=3)"
    )
    other = fresh.replace("'fresh'", "'old'")
    assert noise.filter(record(fresh)) is False
    assert noise.filter(record(other)) is True  # not ours: still shown
    assert noise.filter(record("Failed fetch offsets from 1: timeout topic='fresh'")) is True
    late = NewTopicNoise(window_s=0.0)
    late.topics_created(["fresh"])
    late.created["fresh"] -= 1.0
    assert late.filter(record(fresh)) is True  # long after the creation: a real problem, shown
