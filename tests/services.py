"""Find the real Kafka broker and Redis server the integration tests use.

Order: addresses from the environment; testcontainers when a Docker daemon answers; else the project's
local stack (started here when not running, stopped at the end if we started it).

SEGSTREAM_TEST_REDIS=cluster points the tests at a Redis Cluster instead of the single server:
SEGSTREAM_REDIS_CLUSTER_URL if set, else the local stack's 3-primary cluster (`cluster_url`, started here
when not running, stopped at the end if we started it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field


def forget_keys(redis_url: str, key_prefix: str) -> None:
    """Delete every key under `key_prefix:` (a test's, a held chaos scenario's) from a Redis shared with other
    runs: SCAN on every node, UNLINK in batches of 500."""
    from streams.store.connection import sync_client

    client = sync_client(redis_url, socket_timeout=10)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{key_prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


@dataclass
class Services:
    kafka_bootstrap: str
    redis_url: str
    kafka_description: str
    redis_description: str
    origin: str
    _cleanups: list[Callable[[], object]] = field(default_factory=list, repr=False)

    def close(self) -> None:
        while self._cleanups:
            self._cleanups.pop()()


def _redis_description(url: str) -> str:
    from streams.store.connection import is_cluster, sync_client

    client = sync_client(url, socket_timeout=5)
    try:
        if is_cluster(url):
            primaries = client.get_primaries()  # type: ignore[attr-defined]
            version = client.info("server", target_nodes=primaries[0])["redis_version"]
            return f"Redis Cluster {version}, {len(primaries)} primaries, at {url}"
        return f"Redis {client.info('server')['redis_version']} at {url}"
    finally:
        client.close()


def wants_cluster() -> bool:
    """SEGSTREAM_TEST_REDIS=cluster: the Redis tests run against a Redis Cluster."""
    return os.environ.get("SEGSTREAM_TEST_REDIS", "single") == "cluster"


def cluster_url(cleanups: list[Callable[[], object]]) -> str:
    """A Redis Cluster: SEGSTREAM_REDIS_CLUSTER_URL, else the local stack's (started if not running; its stop
    is appended to `cleanups` when started here, unless SEGSTREAM_DEVSTACK_KEEP=1)."""
    url = os.environ.get("SEGSTREAM_REDIS_CLUSTER_URL")
    if url:
        return url
    from streams import devstack

    cfg = devstack.StackConfig.from_env()
    started_here = not devstack.cluster_status(cfg).running
    st = devstack.cluster_up(cfg)
    if started_here and os.environ.get("SEGSTREAM_DEVSTACK_KEEP") != "1":
        cleanups.append(lambda: devstack.cluster_down(cfg))
    return st.url


def _kafka_description(bootstrap: str, known_version: str | None = None) -> str:
    if known_version:
        return f"Apache Kafka {known_version} at {bootstrap}"
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        api = admin._client.check_version()  # best effort: kafka-python infers the broker's release
    finally:
        admin.close()
    return f"Kafka-protocol broker (API ~{'.'.join(map(str, api))}) at {bootstrap}"


def _docker_answers() -> bool:
    if os.environ.get("SEGSTREAM_NO_DOCKER") == "1":
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # no socket, no permission, no daemon: all mean "not here"
        return False


class ServicesError(RuntimeError):
    """The services cannot be used: one line naming the setting to fix (pytest shows it as a usage error)."""


def _from_env() -> Services | None:
    """The services named by the environment: both addresses, or neither (then found elsewhere). One address
    alone is refused: it was ignored, and the tests ran against the local stack's Redis and Kafka instead."""
    bootstrap = os.environ.get("SEGSTREAM_KAFKA_BOOTSTRAP")
    url = os.environ.get("SEGSTREAM_REDIS_URL")
    if not (bootstrap or url):
        return None
    if not (bootstrap and url):
        given, missing = ("SEGSTREAM_KAFKA_BOOTSTRAP", "SEGSTREAM_REDIS_URL")
        if not bootstrap:
            given, missing = missing, given
        raise ServicesError(
            f"{given} is set but {missing} is not: set both to test against those services, or neither "
            "for testcontainers or the local stack"
        )
    from streams.settings import without_password

    try:
        kafka = _kafka_description(bootstrap)
    except Exception as exc:  # refused, unresolvable, timed out: all mean the address is wrong or down
        raise ServicesError(f"SEGSTREAM_KAFKA_BOOTSTRAP={bootstrap} does not answer: {exc}") from exc
    try:
        redis_description = _redis_description(url)
    except Exception as exc:
        raise ServicesError(f"SEGSTREAM_REDIS_URL={without_password(url)} does not answer: {exc}") from exc
    return Services(bootstrap, url, kafka, redis_description, "environment")


def _from_testcontainers() -> Services:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    kafka = KafkaContainer("apache/kafka:4.1.1").with_kraft()
    redis_c = RedisContainer("redis:7.4")
    kafka.start()
    redis_c.start()
    host, port = redis_c.get_container_host_ip(), redis_c.get_exposed_port(6379)
    url = f"redis://{host}:{port}/0"
    services = Services(kafka.get_bootstrap_server(), url, "", "", "testcontainers")
    services.kafka_description = _kafka_description(services.kafka_bootstrap, "4.1.1 (testcontainers)")
    services.redis_description = _redis_description(url)
    services._cleanups += [kafka.stop, redis_c.stop]
    return services


def _from_devstack() -> Services:
    from streams import devstack

    cfg = devstack.StackConfig.from_env()
    started_here = not devstack.status(cfg).running
    devstack.up(cfg)
    services = Services(
        cfg.kafka_bootstrap,
        cfg.redis_url,
        _kafka_description(cfg.kafka_bootstrap, f"{devstack.kafka_version()} (KRaft, local stack)"),
        _redis_description(cfg.redis_url),
        "local stack",
    )
    if started_here and os.environ.get("SEGSTREAM_DEVSTACK_KEEP") != "1":
        services._cleanups.append(lambda: devstack.down(cfg))
    return services


def discover() -> Services:
    from streams.devstack import StackError

    try:
        services = _from_env() or (_from_testcontainers() if _docker_answers() else _from_devstack())
        if wants_cluster():
            services.redis_url = cluster_url(services._cleanups)
            services.redis_description = _cluster_description(services.redis_url)
    except StackError as exc:  # a port taken, no Java: the stack's message says what to do
        raise ServicesError(f"the local stack cannot start: {exc}") from exc
    return services


def _cluster_description(url: str) -> str:
    from streams.settings import without_password

    try:
        return _redis_description(url)
    except Exception as exc:  # SEGSTREAM_REDIS_CLUSTER_URL refused or not a cluster
        raise ServicesError(f"the Redis Cluster at {without_password(url)} does not answer: {exc}") from exc
