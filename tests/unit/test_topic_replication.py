"""The replication of the topics a process creates: the brokers' defaults, a WARNING naming the setting where
a cluster of several brokers would get fewer than min(3, brokers) copies or the defaults cannot be read, and
min.insync.replicas raised to 2 for 3 replicas only where the brokers' default is lower. The same decisions
against the real brokers: tests/integration/test_topic_replication.py, tests/chaos/test_kafka_cluster.py."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest
from aiokafka.errors import ClusterAuthorizationFailedError

from streams.bootstrap import producer
from streams.settings import Settings
from streams.topics.replication import (
    FACTOR,
    MIN_ISR,
    Replication,
    TopicsRefused,
    _refused,
    decide,
    defaults_in,
    min_insync,
    report,
)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_the_brokers_defaults_decide_and_a_lower_min_insync_is_raised_to_two(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert decide(None, 3, {FACTOR: 3, MIN_ISR: 2}) == Replication(3, {})
    assert decide(None, 3, {FACTOR: 3, MIN_ISR: 1}) == Replication(3, {MIN_ISR: "2"})
    assert decide(None, 5, {FACTOR: 5, MIN_ISR: 3}) == Replication(5, {})  # the operator's stricter choice
    assert decide(None, 1, {FACTOR: 1, MIN_ISR: 1}) == Replication(1, {})
    assert decide(2, 2, {FACTOR: 1, MIN_ISR: 1}) == Replication(
        2, {}
    )  # 2 copies: min ISR 1, nothing to raise
    assert decide(3, 3, {FACTOR: 1, MIN_ISR: 1}) == Replication(3, {MIN_ISR: "2"})
    assert warnings(caplog) == []
    assert [min_insync(r) for r in (1, 2, 3, 4, 7)] == [1, 1, 2, 2, 2]


def test_a_stock_default_of_one_on_three_brokers_warns_naming_the_settings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert decide(None, 3, {FACTOR: 1, MIN_ISR: 1}) == Replication(1, {})
    assert warnings(caplog) == [
        "new topics get 1 replica on a cluster of 3 brokers (the brokers' default.replication.factor): the"
        " loss of a broker holding one stops the stream and can lose acknowledged transitions; set"
        " SEGSTREAM_TOPIC_REPLICATION=3 or the brokers' default.replication.factor to 3"
    ]
    caplog.clear()
    assert decide(2, 5, {FACTOR: 3, MIN_ISR: 2}).factor == 2  # set on purpose, still fewer than usual
    assert warnings(caplog) == [
        "new topics get 2 replicas on a cluster of 5 brokers (SEGSTREAM_TOPIC_REPLICATION=2): the loss of a"
        " broker holding one stops the stream and can lose acknowledged transitions; set"
        " SEGSTREAM_TOPIC_REPLICATION=3 or the brokers' default.replication.factor to 3"
    ]
    caplog.clear()
    assert decide(None, 2, {FACTOR: 2, MIN_ISR: 1}) == Replication(2, {})  # every broker of two: usual
    assert warnings(caplog) == []


def test_unreadable_defaults_warn_with_the_values_used(caplog: pytest.LogCaptureFixture) -> None:
    reason = "ClusterAuthorizationFailedError: denied"
    assert decide(None, 3, {}, reason) == Replication(3, {MIN_ISR: "2"})
    assert warnings(caplog) == [
        "could not read the brokers' default.replication.factor and min.insync.replicas"
        " (ClusterAuthorizationFailedError: denied): new topics get 3 replicas (min(3, 3 brokers)) and"
        " min.insync.replicas=2"
    ]
    caplog.clear()
    assert decide(None, 1, {}, reason) == Replication(1, {})
    assert warnings(caplog)[0].endswith(
        "new topics get 1 replicas (min(3, 1 brokers)) and the brokers' min.insync.replicas"
    )
    caplog.clear()
    assert decide(2, 3, {FACTOR: 3}, "the broker's answer lacks min.insync.replicas") == Replication(2, {})
    assert warnings(caplog)[0].endswith(
        "(the broker's answer lacks min.insync.replicas): new topics get 2 replicas"
        " (SEGSTREAM_TOPIC_REPLICATION=2) and the brokers' min.insync.replicas"
    )
    assert len(warnings(caplog)) == 2  # and the fewer-than-usual one


def test_a_refusal_inside_the_brokers_answer_is_raised() -> None:
    """A broker denying DESCRIBE_CONFIGS answers with an error code in the resource, which aiokafka returns;
    the shape is the real broker's (tests/integration/test_topic_replication.py reads its values)."""
    entry = {"config_names": MIN_ISR, "config_value": "2", "read_only": False, "config_source": 5}
    ok = {"error_code": 0, "error_message": "", "resource_type": 4, "resource_name": "1"}
    assert defaults_in({"resources": [{**ok, "config_entries": [entry]}]}) == {MIN_ISR: 2}
    denied = {**ok, "error_code": 31, "error_message": None, "config_entries": []}
    with pytest.raises(
        ClusterAuthorizationFailedError, match="not authorized to use an inter-broker or administrative API"
    ):
        defaults_in({"resources": [denied]})
    with pytest.raises(ClusterAuthorizationFailedError, match="denied to user alice"):
        defaults_in({"resources": [{**denied, "error_message": "denied to user alice"}]})


def test_existing_topics_are_reported_and_an_under_replicated_one_warned_of(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "segstream")
    one = {"partitions": [{"replicas": [1]}, {"replicas": [2]}]}
    three = {"partitions": [{"replicas": [1, 2, 3]}, {"replicas": [2, 3, 1]}]}
    report([{"topic": "ev", **three}, {"topic": "tr", **one}, {"topic": "gone", "partitions": []}], 3)
    assert [r.getMessage() for r in caplog.records] == [
        "topic tr has 1 replica on a cluster of 3 brokers (set when it was created): the loss of a broker"
        " holding one stops the stream and can lose acknowledged transitions; add replicas with"
        " kafka-reassign-partitions.sh (SEGSTREAM_TOPIC_REPLICATION applies to new topics only)",
        "topics on 3 brokers: ev (2 partitions, 3 replicas), tr (2 partitions, 1 replicas),"
        " gone (0 partitions, 0 replicas)",
    ]
    caplog.clear()
    report([{"topic": "tr", **one}], 1)
    assert [r.getMessage() for r in caplog.records] == ["topics on 1 broker: tr (2 partitions, 1 replicas)"]


def test_a_refused_topic_is_an_error_naming_the_settings() -> None:
    _refused(SimpleNamespace(topic_errors=[("a", 0, None), ("b", 36, "exists")]))
    with pytest.raises(TopicsRefused, match="refused to create topic 'c': Replication factor: 3 larger"):
        _refused(SimpleNamespace(topic_errors=[("c", 38, "Replication factor: 3 larger than brokers: 1")]))
    with pytest.raises(TopicsRefused, match="'d': error 37; check SEGSTREAM_TOPIC_PARTITIONS / SEGSTREAM_TO"):
        _refused(SimpleNamespace(topic_errors=[("d", 37, None)]))


def test_the_producer_waits_for_every_in_sync_replica_and_is_idempotent() -> None:
    """What min.insync.replicas is for: acks=all (-1 on the wire) and idempotence (a transaction manager
    that numbers the batches). aiokafka keeps both in private attributes: a rename fails here, loudly."""

    async def made() -> tuple[object, object]:
        made = producer(Settings())
        return made._sender._acks, made._txn_manager

    acks, numbering = asyncio.run(made())
    assert acks == -1
    assert numbering is not None
