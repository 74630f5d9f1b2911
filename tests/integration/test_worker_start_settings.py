"""A worker given settings it cannot run with says so in one line and exits 2 before it touches anything
(README "Exit codes"), rather than run with them (looping, or writing what no command can reach) or end in
a traceback later. Real Kafka and Redis; the worker as a process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import redis
from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from tests.integration.test_cli_failures import ROOT, failed, keys
from tests.services import Services


def worker(
    variables: dict[str, str], seconds: float = 20.0, **extra: str
) -> subprocess.CompletedProcess[str]:
    """`segstream worker` with these variables; one still running after `seconds` is stopped (SIGINT), and
    its return code is then None."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"],
        env={**variables, **extra},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=seconds)
        return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        return subprocess.CompletedProcess(proc.args, None, "", err)  # type: ignore[arg-type]


def _records(bootstrap: str, topic: str) -> int:
    """How many records the one-partition topic holds."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return sum(consumer.end_offsets([TopicPartition(topic, 0)]).values())
    finally:
        consumer.close()


def _create(bootstrap: str, topic: str) -> None:
    """A topic of one partition."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()


async def _send(bootstrap: str, topic: str, value: bytes) -> None:
    """One record to a new topic of one partition."""
    _create(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"c1")
    finally:
        await producer.stop()


def test_a_dead_letter_topic_that_is_the_events_topic_is_refused(
    env: dict[str, str], client: redis.Redis, services: Services
) -> None:
    """The worker would consume its own dead letters as events: each malformed record a dead letter again,
    written to the topic it reads, for ever."""
    events = env["SEGSTREAM_EVENTS_TOPIC"]
    asyncio.run(_send(services.kafka_bootstrap, events, b"{not json"))
    result = worker(env, SEGSTREAM_DLQ_TOPIC=events, SEGSTREAM_TOPIC_PARTITIONS="1")
    held = _records(services.kafka_bootstrap, events)
    assert result.returncode == 2, f"exit {result.returncode}; the events topic holds {held} records (1 sent)"
    failed(result, 2, "SEGSTREAM_DLQ_TOPIC", "SEGSTREAM_EVENTS_TOPIC")
    assert held == 1 and keys(client, env) == []


def test_a_transitions_topic_that_is_another_topic_of_the_worker_is_refused(
    env: dict[str, str], services: Services
) -> None:
    """Transitions read back as events (all dead letters), or dead letters mixed into the transitions that
    marketing automation consumes. The topics exist (the broker would refuse to create one twice)."""
    for name in ("SEGSTREAM_EVENTS_TOPIC", "SEGSTREAM_DLQ_TOPIC"):
        _create(services.kafka_bootstrap, env[name])
        result = worker(env, 10, SEGSTREAM_TRANSITIONS_TOPIC=env[name], SEGSTREAM_TOPIC_PARTITIONS="1")
        failed(result, 2, "SEGSTREAM_TRANSITIONS_TOPIC", name)


def test_a_pinned_namespace_the_namespace_commands_refuse_is_refused_before_anything_is_written(
    env: dict[str, str], client: redis.Redis, services: Services
) -> None:
    """`SEGSTREAM_NAMESPACE=staging:v2` ran: its keys were then out of reach of `namespaces drop|promote`
    (an invalid name to them), and inside `drop staging`'s walk (`<prefix>:staging:*`)."""
    for name in ("staging:v2", "spring*", "namespace"):
        result = worker(env, 10, SEGSTREAM_NAMESPACE=name)
        failed(result, 2, "SEGSTREAM_NAMESPACE", name)
    assert keys(client, env) == [] and _topics(services, env) == set()


def _topics(services: Services, env: dict[str, str]) -> set[str]:
    """This test's topics that exist."""
    admin = KafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    try:
        ours = {env[f"SEGSTREAM_{role}_TOPIC"] for role in ("EVENTS", "TRANSITIONS", "DLQ")}
        return set(admin.list_topics()) & ours
    finally:
        admin.close()


def test_sasl_without_its_user_and_password_is_one_line_and_exit_2(env: dict[str, str]) -> None:
    """aiokafka refuses the client (ValueError): it ended in a traceback and exit code 1."""
    for protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        for given in ({}, {"SEGSTREAM_KAFKA_SASL_USERNAME": "segstream"}):
            result = worker(env, 10, SEGSTREAM_KAFKA_SECURITY_PROTOCOL=protocol, **given)
            failed(result, 2, "SEGSTREAM_KAFKA_SASL_USERNAME", "SEGSTREAM_KAFKA_SASL_PASSWORD", protocol)


def test_an_empty_group_id_is_one_line_and_exit_2(env: dict[str, str], services: Services) -> None:
    """The broker refuses it at the group join (InvalidGroupIdError): a traceback and exit code 1, after the
    topics were created."""
    failed(worker(env, 10, SEGSTREAM_GROUP_ID=""), 2, "SEGSTREAM_GROUP_ID")
    assert _topics(services, env) == set()


def test_a_tls_file_that_does_not_exist_is_named_at_once_exit_2(env: dict[str, str]) -> None:
    """It was taken for an unreachable service: the worker waited SEGSTREAM_CONNECT_TIMEOUT_S, advised to
    start Kafka (or Redis) or fix its address, and exited 4."""
    missing = str(ROOT / "no-such-dir" / "ca.pem")
    kafka_tls = {"SEGSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL"}
    for name, extra in (
        ("SEGSTREAM_KAFKA_SSL_CAFILE", kafka_tls),
        ("SEGSTREAM_KAFKA_SSL_CERTFILE", kafka_tls),
        ("SEGSTREAM_REDIS_TLS_CA_FILE", {"SEGSTREAM_REDIS_URL": "rediss://127.0.0.1:6379/0"}),
    ):
        failed(worker(env, 10, **{name: missing, **extra}), 2, name)


def test_a_future_skew_beyond_a_date_is_refused_at_start(env: dict[str, str], services: Services) -> None:
    """`inf` (meant as "no limit") or 10^11 s started, then every batch raised OverflowError computing the
    wall clock plus the skew: a traceback and exit 1 at the first event, and at every restart."""
    asyncio.run(_send(services.kafka_bootstrap, env["SEGSTREAM_EVENTS_TOPIC"], b"{not json"))
    for skew in ("inf", "1e11"):
        result = worker(env, 20, SEGSTREAM_MAX_FUTURE_SKEW_S=skew, SEGSTREAM_TOPIC_PARTITIONS="1")
        failed(result, 2, "SEGSTREAM_MAX_FUTURE_SKEW_S")
