"""The consumer's fetch wait and minimum size are settings: they trade event -> transition latency against
CPU per event (docs/benchmarks.md), and the defaults keep the lowest latency."""

from __future__ import annotations

import asyncio

import pytest

from streams.bootstrap import consumer
from streams.settings import Settings


def fetch_config(settings: Settings) -> tuple[int, int]:
    async def build() -> tuple[int, int]:
        built = consumer(settings)  # not started: nothing connects
        return built._fetch_min_bytes, built._fetch_max_wait_ms

    return asyncio.run(build())


def test_defaults_return_a_fetch_as_soon_as_one_event_is_there() -> None:
    assert fetch_config(Settings()) == (1, 500)


def test_the_environment_sets_the_fetch_size_and_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSTREAM_KAFKA_FETCH_MIN_BYTES", "65536")
    monkeypatch.setenv("SEGSTREAM_KAFKA_FETCH_MAX_WAIT_MS", "20")
    assert fetch_config(Settings()) == (65536, 20)


def test_a_fetch_size_below_one_byte_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSTREAM_KAFKA_FETCH_MIN_BYTES", "0")
    with pytest.raises(ValueError, match="kafka_fetch_min_bytes"):
        Settings()
