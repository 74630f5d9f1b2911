"""The topics' replication against the real single broker: its defaults read exactly, topics created and
reported without a warning (one broker, one copy is all there is), and a failed read of the defaults warns
naming the values used. The 3-broker cases: tests/chaos/test_kafka_cluster.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.bootstrap import ensure_topics
from streams.topics.replication import (
    FACTOR,
    MIN_ISR,
    Replication,
    broker_defaults,
    create_missing,
    replication,
)
from tests.integration.worker_harness import make_settings
from tests.services import Services

pytestmark = pytest.mark.integration


def test_the_single_broker_gets_one_copy_reported_without_a_warning(
    services: Services, topic_name: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "segstream")
    settings = make_settings(services, topic_name, "unused:")
    asyncio.run(ensure_topics(settings))
    asyncio.run(ensure_topics(settings))  # the second start finds them
    names = ", ".join((settings.events_topic, settings.transitions_topic, settings.dlq_topic))
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "segstream"]
    assert lines == [
        ("INFO", f"created topics {names}: 2 partitions, 1 replicas"),
        (
            "INFO",
            "topics on 1 broker: " + ", ".join(f"{t} (2 partitions, 1 replicas)" for t in names.split(", ")),
        ),
    ]


def test_the_brokers_defaults_are_read_and_a_failed_read_warns(
    services: Services, topic_name: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(services, topic_name, "unused:")

    async def check() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
        await admin.start()
        try:
            brokers = (await admin.describe_cluster())["brokers"]
            assert await broker_defaults(admin, brokers[0]["node_id"]) == {FACTOR: 1, MIN_ISR: 1}
            assert await replication(admin, brokers, settings.topic_replication) == Replication(1, {})
            assert caplog.records == []
            # a broker that is not there cannot answer: the same fallback as a refused DESCRIBE_CONFIGS
            absent = [{**brokers[0], "node_id": 999}]
            assert await replication(admin, absent, None) == Replication(1, {})
        finally:
            await admin.close()

    asyncio.run(check())
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "segstream"]
    assert warning.getMessage().startswith(
        "could not read the brokers' default.replication.factor and min.insync.replicas (NodeNotReadyError:"
    )
    assert warning.getMessage().endswith(
        "new topics get 1 replicas (min(3, 1 brokers)) and the brokers' min.insync.replicas"
    )


class _ListedBeforeAnotherCreates(AIOKafkaAdminClient):  # type: ignore[misc]
    """An admin client whose topic list is answered before another process creates `topics`: what a broker
    whose metadata lags a creation (a cluster of several brokers), or a second worker starting at the same
    moment, makes `create_missing` see."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        super().__init__(bootstrap_servers=bootstrap)
        self.bootstrap, self.topics = bootstrap, topics

    async def list_topics(self) -> list[str]:
        listed: list[str] = await super().list_topics()
        other = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await other.start()
        try:
            await other.create_topics([NewTopic(t, 3, 1) for t in self.topics])
        finally:
            await other.close()
        return listed


def test_topics_created_by_another_between_the_list_and_the_creation_are_reported_as_existing(
    services: Services, topic_name: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing is said to be created that this call did not create: the topics are reported with the
    partitions the other process gave them (3, not the 2 asked), as at any start that finds them."""
    caplog.set_level(logging.INFO, "segstream")
    settings = make_settings(services, topic_name, "unused:")
    names = [settings.events_topic, settings.transitions_topic, settings.dlq_topic]

    async def run() -> list[str]:
        admin = _ListedBeforeAnotherCreates(services.kafka_bootstrap, names)
        await admin.start()
        try:
            return await create_missing(admin, names, 2, None)
        finally:
            await admin.close()

    assert asyncio.run(run()) == []
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "segstream"]
    assert lines == [
        ("INFO", "topics on 1 broker: " + ", ".join(f"{t} (3 partitions, 1 replicas)" for t in names)),
    ]
