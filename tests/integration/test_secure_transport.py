"""The worker and the HTTP API end to end over Kafka SASL_SSL (SCRAM-SHA-512) and Redis with TLS and a
least-privilege ACL user (issue 12). A private broker whose only client listener is SASL_SSL, and a private
`redis-server` with a TLS port only and `user default off`: segstream's Redis user may run only the commands
in `streams.devstack.secure_redis.COMMANDS` on keys under its prefix. Events go in over SASL_SSL, the worker
applies every one and publishes its transitions over SASL_SSL, the API (HTTPS) serves what it wrote, nothing
segstream sent was refused (ACL LOG), and the same Redis user cannot FLUSHALL, CONFIG SET, KEYS or touch a key
outside its prefix; a client without credentials gets nothing from the broker."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from pydantic import SecretStr

from streams.devstack import secure_kafka, secure_redis
from streams.sample import generator as sample
from streams.settings import Settings
from tests.integration.api_server import DECLARED, feed, free_port, serve
from tests.integration.test_api_security import get
from tests.integration.worker_harness import make_settings, read_topic, stored_customers
from tests.services import Services

PREFIX = f"sec{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sasl_kafka(tmp_path: Path) -> Iterator[secure_kafka.SecureKafka]:
    broker = secure_kafka.start(tmp_path / "kafka", free_port(), free_port(), secrets.token_urlsafe(16))
    try:
        asyncio.run(secure_kafka.wait_ready(broker))
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[secure_redis.SecureRedis]:
    try:
        server = secure_redis.start(
            tmp_path / "redis", free_port(), secrets.token_urlsafe(16), PREFIX, admin_password="adm1n"
        )
    except RuntimeError as exc:
        pytest.fail(f"private TLS Redis: {exc}")
    yield server
    server.stop()


def test_worker_and_api_over_kafka_sasl_ssl_and_redis_tls_with_acl_user(
    services: Services,
    topic_name: Callable[[str], str],
    sasl_kafka: secure_kafka.SecureKafka,
    tls_redis: secure_redis.SecureRedis,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        services,
        topic_name,
        PREFIX,
        kafka_bootstrap=sasl_kafka.bootstrap,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=secure_kafka.MECHANISM,
        kafka_sasl_username=sasl_kafka.user,
        kafka_sasl_password=sasl_kafka.password,
        kafka_ssl_cafile=sasl_kafka.certs.ca,
        redis_url=tls_redis.url,
        redis_tls_ca_file=tls_redis.certs.ca,
    )
    secure_kafka.grant(sasl_kafka, topic_name(""))  # the test's topics and group only
    total = feed(settings)
    transitions = asyncio.run(read_topic(settings, settings.transitions_topic, 1))
    assert {r.key.decode() for r in transitions} >= set(DECLARED)
    assert len(stored_customers(settings)) == len(DECLARED) + 40
    with serve(settings, tls_redis.certs) as api:
        status, profile, _ = get(api, "/customers/p1", "pii")
        assert status == 200 and profile["declared"]["birth_year"] == 1984
        status, kpis, _ = get(api, "/grids/lifecycle/segments", "seg")
        assert status == 200 and sum(k["customers"] for k in kpis["segments"].values()) == len(DECLARED) + 40
        assert get(api, "/grids/lifecycle/segments/active/members?count=5", "members")[0] == 200
        status, history, _ = get(api, "/customers/p1/history", "prof")
        assert status == 200 and history["entries"]
    assert total > 0
    # a file replay and a drop as the same user: the namespace's lease and mark scripts run under the ACL too
    events = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=5, days=10, seed=3), events)
    env = {**os.environ, **settings.as_environment()}
    for argv in (["replay", str(events), "--namespace", "acl", "--out-dir", str(tmp_path)], ["drop", "acl"]):
        cli_argv = [sys.executable, "-m", "streams.cli", *argv]
        done = subprocess.run(cli_argv, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    admin = redis.Redis(
        port=tls_redis.port,
        ssl=True,
        ssl_ca_certs=str(tls_redis.certs.ca),
        username="admin",
        password="adm1n",
    )
    try:
        denied = {(str(e["reason"]), str(e["object"])) for e in admin.acl_log()}
        assert denied <= {("command", "config|get")}, denied  # memory advice probes CONFIG GET; tolerated
        user = redis.Redis.from_url(tls_redis.url, ssl_ca_certs=str(tls_redis.certs.ca))
        for command in (
            ("FLUSHALL",),
            ("CONFIG", "SET", "maxmemory", "1"),
            ("KEYS", "*"),
            ("GET", "other:x"),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                user.execute_command(*command)  # type: ignore[no-untyped-call]
        user.close()
        plain = redis.Redis(port=tls_redis.port, socket_timeout=2)  # no TLS: the server does not answer
        with pytest.raises(redis.exceptions.ConnectionError):
            plain.ping()
    finally:
        admin.close()
    asyncio.run(_refused_outside_prefix(settings))
    wrong = settings.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    with pytest.raises(KafkaConnectionError):  # SaslAuthenticationFailed on every attempt (logged)
        asyncio.run(read_topic(wrong, settings.transitions_topic, 1))


async def _refused_outside_prefix(settings: Settings) -> None:
    """Kafka ACLs: segstream's user may not write a topic outside its prefix."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security())
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(f"other-{uuid.uuid4().hex[:6]}", b"x")
    finally:
        await producer.stop()
