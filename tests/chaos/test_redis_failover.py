"""Redis Cluster failover under load (marker `chaos`): the primary holding a partition's slot is killed, its
replica promoted without the primary's last acknowledged commits (its replication cut first, so the loss is
certain, not left to timing), the workers go on, and the namespace ends exactly as a replay of the log,
every transition id on the topic. Own stack: a broker on 29492/29493 and 6
Redis Cluster nodes on 21100-21105 (folder .chaos/pytest-redis-cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.chaos.redis_cluster_stack import RedisClusterStack
from tests.chaos.runner import run_scenario
from tests.chaos.scenarios import suite
from tests.chaos.stack import REPO

pytestmark = [pytest.mark.chaos, pytest.mark.integration]
ROOT = REPO / ".chaos" / "pytest-redis-cluster"


@pytest.fixture(scope="module")
def failover_stack() -> Iterator[RedisClusterStack]:
    stack = RedisClusterStack.create_failover(ROOT)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.mark.timeout(420)
def test_a_primary_killed_under_load_is_replaced_by_its_replica_and_nothing_is_lost(
    failover_stack: RedisClusterStack,
) -> None:
    (scenario,) = suite(("redis_failover",), reduced=True)
    row = asyncio.run(run_scenario(scenario, failover_stack, ROOT / "runs"))
    print(row.line())
    assert row.held, row.line()
    events = row.info[-1]
    assert "serves p0 after" in events, row.line()  # the failover happened
    assert "acknowledged writes lost with the primary" in events, row.line()  # and the replica lagged
    assert "a new client, the dead node first" in events, row.line()
    assert row.crashes == [], f"a worker exited on the failover: {row.crashes}"
