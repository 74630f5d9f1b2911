"""The reduced chaos suite as part of `make test` (marker `chaos`; `-m "not chaos"` skips it).

It runs on a private stack of its own (ports 29092/29093/26379 unless SEGSTREAM_CHAOS_KAFKA_PORT /
_CONTROLLER_PORT / _REDIS_PORT say otherwise, folder .chaos/pytest), never on the services the other tests
use: its scenarios kill the broker and Redis. The full suite is `make chaos` (docs/reliability.md)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from tests.chaos.runner import run_scenario
from tests.chaos.scenarios import Scenario, suite
from tests.chaos.stack import REPO, PrivateStack

pytestmark = [pytest.mark.chaos, pytest.mark.integration]
ROOT = REPO / ".chaos" / "pytest"


@pytest.fixture(scope="module")
def chaos_stack() -> Iterator[PrivateStack]:
    env = os.environ
    stack = PrivateStack.create(
        ROOT / "stack",
        int(env.get("SEGSTREAM_CHAOS_KAFKA_PORT", "29092")),
        int(env.get("SEGSTREAM_CHAOS_CONTROLLER_PORT", "29093")),
        int(env.get("SEGSTREAM_CHAOS_REDIS_PORT", "26379")),
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.mark.timeout(420)
@pytest.mark.parametrize("scenario", suite(reduced=True), ids=lambda s: f"{s.name}-{s.seed}")
def test_scenario_holds(scenario: Scenario, chaos_stack: PrivateStack) -> None:
    row = asyncio.run(run_scenario(scenario, chaos_stack, ROOT / "runs"))
    assert row.held, row.line()
