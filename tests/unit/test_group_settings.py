"""How long a silent worker keeps its partitions is a setting: SEGSTREAM_KAFKA_SESSION_TIMEOUT_MS (a killed
worker's partitions wait for it, docs/capacity.md) with its heartbeat interval; the defaults are aiokafka's.
The brokers' refusal of a value: tests/integration/test_cli_failures.py."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import InvalidSessionTimeoutError

from streams.bootstrap import consumer
from streams.errors import USAGE, failure
from streams.settings import Settings


def group_config(settings: Settings) -> tuple[int, int]:
    async def build() -> tuple[int, int]:
        built = consumer(settings)  # not started: nothing connects
        return built._session_timeout_ms, built._heartbeat_interval_ms

    return asyncio.run(build())


def test_defaults_are_a_ten_second_session_with_a_heartbeat_every_three() -> None:
    assert group_config(Settings()) == (10_000, 3_000)


def test_the_environment_sets_the_session_timeout_and_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSTREAM_KAFKA_SESSION_TIMEOUT_MS", "6000")
    monkeypatch.setenv("SEGSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS", "1000")
    assert group_config(Settings()) == (6_000, 1_000)


def test_a_heartbeat_slower_than_a_third_of_the_session_is_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEGSTREAM_KAFKA_SESSION_TIMEOUT_MS", "6000")
    with pytest.raises(ValueError) as refused:
        Settings()
    code, message = failure(refused.value, None)
    assert (code, message) == (
        USAGE,
        "configuration error: SEGSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS=3000 is more than a third of"
        " SEGSTREAM_KAFKA_SESSION_TIMEOUT_MS=6000: lower it",
    )


def test_a_session_timeout_the_brokers_refuse_is_a_usage_error_naming_their_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEGSTREAM_KAFKA_SESSION_TIMEOUT_MS", "3000")
    monkeypatch.setenv("SEGSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS", "1000")
    code, message = failure(InvalidSessionTimeoutError(), Settings())
    assert code == USAGE
    assert "refused SEGSTREAM_KAFKA_SESSION_TIMEOUT_MS=3000" in message
    assert "group.min.session.timeout.ms" in message
