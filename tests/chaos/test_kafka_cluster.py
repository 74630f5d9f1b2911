"""The worker on a replicated Kafka (3 KRaft brokers, replication 3, min ISR 2) as part of `make test`
(markers chaos + integration): exact states and transitions of a scripted history, and a leader's kill -9
under load that loses nothing (compared with a replay reference, as the chaos suite does).

The 3 brokers are our own (ports 29292-29294 / controllers 29392-29394 unless SEGSTREAM_CLUSTER_KAFKA_PORT /
_CONTROLLER_PORT say otherwise, folder .chaos/cluster); Redis is the shared one, under unique prefixes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable, Iterator

import pytest

from streams.bootstrap import ensure_topics
from streams.devstack.__main__ import main as devstack_cli
from streams.devstack.kafka import port_open
from tests.chaos.cluster_stack import BROKER_PORT, CONTROLLER_PORT, DEFAULT_DIR, ClusterStack
from tests.chaos.runner import run_scenario
from tests.chaos.scenarios import suite
from tests.integration import test_worker_history as history  # a module: its test is not collected here
from tests.integration.worker_harness import make_settings
from tests.services import Services

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


@pytest.fixture(scope="module")
def cluster(services: Services) -> Iterator[ClusterStack]:
    env = os.environ
    stack = ClusterStack.create_cluster(
        DEFAULT_DIR,
        int(env.get("SEGSTREAM_CLUSTER_KAFKA_PORT", str(BROKER_PORT))),
        int(env.get("SEGSTREAM_CLUSTER_CONTROLLER_PORT", str(CONTROLLER_PORT))),
        services.redis_url,
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.mark.timeout(300)
def test_scripted_history_is_exact_on_three_brokers(
    cluster: ClusterStack, services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    on_cluster = dataclasses.replace(services, kafka_bootstrap=cluster.kafka_bootstrap)
    history.test_scripted_history_matches_the_pure_core(on_cluster, topic_name, redis_prefix)
    # the worker created its topics with the cluster's replication (3), not a single copy
    settings = make_settings(on_cluster, topic_name, redis_prefix)
    for topic in (settings.events_topic, settings.transitions_topic, settings.dlq_topic):
        assert cluster.replicas(topic) == [3, 3], topic
        assert cluster.topic_overrides(topic) == {}, topic  # the brokers' min.insync.replicas (2) holds


@pytest.mark.timeout(120)
def test_too_few_replicas_are_warned_of_and_a_low_min_insync_is_raised(
    cluster: ClusterStack,
    services: Services,
    topic_name: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SEGSTREAM_TOPIC_REPLICATION=1 on 3 brokers: a WARNING naming the setting at creation and at the next
    start; brokers left at Kafka's stock min.insync.replicas=1: the 3-replica topics get 2 of their own."""
    on_cluster = dataclasses.replace(services, kafka_bootstrap=cluster.kafka_bootstrap)
    single = make_settings(
        on_cluster, lambda base: topic_name(f"single-{base}"), "unused:", topic_replication=1
    )
    asyncio.run(ensure_topics(single))
    asyncio.run(ensure_topics(single))
    warned = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "segstream"
    ]
    assert len(warned) == 4, warned
    assert warned[0].startswith(
        "new topics get 1 replica on a cluster of 3 brokers (SEGSTREAM_TOPIC_REPLICATION=1)"
    )
    assert warned[0].endswith(
        "set SEGSTREAM_TOPIC_REPLICATION=3 or the brokers' default.replication.factor to 3"
    )
    names = (single.events_topic, single.transitions_topic, single.dlq_topic)
    assert sorted(w.split(" has 1 replica on a cluster of 3 brokers")[0] for w in warned[1:]) == sorted(
        f"topic {t}" for t in names
    )
    assert cluster.replicas(single.events_topic) == [1, 1]

    stock = make_settings(on_cluster, lambda base: topic_name(f"stock-{base}"), "unused:")
    cluster.set_cluster_default("min.insync.replicas", "1")
    try:
        asyncio.run(ensure_topics(stock))
    finally:
        cluster.set_cluster_default("min.insync.replicas", "2")  # the nodes' own (ELR: it cannot go)
    for topic in (stock.events_topic, stock.transitions_topic, stock.dlq_topic):
        assert cluster.replicas(topic) == [3, 3], topic
        assert cluster.topic_overrides(topic) == {"min.insync.replicas": "2"}, topic


@pytest.mark.timeout(300)
def test_time_driven_transition_is_exact_on_three_brokers(
    cluster: ClusterStack, services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    on_cluster = dataclasses.replace(services, kafka_bootstrap=cluster.kafka_bootstrap)
    history.test_replay_mode_moves_a_silent_customer_to_at_risk_at_the_exact_due_time(
        on_cluster, topic_name, redis_prefix
    )


@pytest.mark.timeout(420)
def test_a_leader_killed_under_load_loses_nothing(cluster: ClusterStack) -> None:
    (scenario,) = suite(("replicated_broker_kill9",), reduced=True)
    row = asyncio.run(run_scenario(scenario, cluster, DEFAULT_DIR / "runs"))
    print(row.line())
    assert row.held, row.line()
    assert row.crashes == [], f"the worker exited on the broker's loss: {row.crashes}"
    assert any("back after" in info for info in row.info[-1:]), row.line()  # the fault really happened


def test_devstack_status_and_down_cover_the_cluster(
    cluster: ClusterStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Last in the module: the CLI's `down` stops the 3 nodes (the fixture then finds nothing to stop)."""
    nodes = cluster.nodes
    monkeypatch.setenv("SEGSTREAM_DEVSTACK_DIR", str(nodes.root.parent))
    monkeypatch.setenv("SEGSTREAM_DEVSTACK_KAFKA_CLUSTER_PORT", str(nodes.broker_port))
    monkeypatch.setenv("SEGSTREAM_DEVSTACK_KAFKA_CLUSTER_CONTROLLER_PORT", str(nodes.controller_port))
    devstack_cli(["status"])
    report = capsys.readouterr().out
    for node in nodes.ids:
        assert f"kafka-{node} running" in report, report
    assert f"bootstrap {nodes.bootstrap}" in report
    assert devstack_cli(["down"]) == 0
    assert capsys.readouterr().out.strip() == "stopped: kafka node 1, kafka node 2, kafka node 3"
    assert not any(port_open(nodes.port(n)) or port_open(nodes.controller(n)) for n in nodes.ids)
