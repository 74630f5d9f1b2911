"""The one place that wires settings to clients: nothing connects at import time, everything here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from segmentation import Definitions
from streams import logs
from streams.settings import Settings, without_password
from streams.store import connection
from streams.store.counters import Metrics
from streams.store.definitions_record import RedisDefinitionsRecord
from streams.store.keys import KeySpace
from streams.store.reachable import wait_for, wait_for_redis
from streams.store.redis_store import RedisStateStore
from streams.store.tuning import refuse_eviction
from streams.topics import lenient_records, message_limit, replication
from streams.topics.partition_count import check_events_topic
from streams.worker.loop import Worker
from streams.worker.mode_guard import check_mode
from streams.worker.namespace_follow import NamespaceFollow, check_claim, check_partitions

log = logging.getLogger("segstream")


def load_definitions(settings: Settings) -> Definitions:
    return (
        Definitions.from_yaml(settings.definitions_file)
        if settings.definitions_file
        else Definitions.default()
    )


def worker_definitions(settings: Settings) -> Definitions:
    """The definitions file and a pinned SEGSTREAM_NAMESPACE, checked before any wait or write (exit 2): an
    `a:b` namespace was out of reach of `namespaces drop|promote`, and inside `drop a`'s walk."""
    if settings.namespace is not None:
        from streams.store.namespaces import NamespaceError, check_name

        try:
            check_name(settings.namespace)
        except NamespaceError as exc:
            raise NamespaceError(f"SEGSTREAM_NAMESPACE: {exc}") from None
    return load_definitions(settings)


def keyspace(settings: Settings) -> KeySpace:
    """Keys of the configured namespace; without SEGSTREAM_NAMESPACE, the active one (read once, here)."""
    namespace = settings.namespace
    if namespace is None:
        from streams.store.namespaces import DEFAULT, pointer_key

        client = sync_redis(settings, decode_responses=True)
        try:
            namespace = str(client.get(pointer_key(settings.key_prefix)) or DEFAULT)
        finally:
            client.close()
    return KeySpace(settings.key_prefix, namespace, settings.events_topic)


async def resolve_namespace(settings: Settings, client: aioredis.Redis) -> Settings:
    """The settings with `namespace` set: SEGSTREAM_NAMESPACE if given, else the active namespace now
    (which a worker then follows, see `streams.worker.namespace_follow`)."""
    if settings.namespace is not None:
        return settings
    from streams.store.namespaces import active_namespace

    return settings.model_copy(update={"namespace": await active_namespace(client, settings.key_prefix)})


def follow_active(settings: Settings, client: aioredis.Redis) -> NamespaceFollow:
    """How an unpinned worker reads the active-namespace pointer and reaches the namespace it names."""
    from streams.store.namespaces import active_namespace

    assert settings.namespace is not None, "resolve the namespace first"
    prefix, topic = settings.key_prefix, settings.events_topic

    record = definitions_record(settings, client)

    async def record_follow(name: str, version: str) -> None:
        await record.record(name, version, adopted=await record.version(name) is not None)

    return NamespaceFollow(
        settings.namespace,
        lambda: active_namespace(client, prefix),
        lambda name: RedisStateStore(client, KeySpace(prefix, name, topic)),
        record.version,
        record_follow,
        check_partitions=lambda name: check_partitions(record, name, settings.topic_partitions),
    )


def definitions_record(settings: Settings, client: aioredis.Redis) -> RedisDefinitionsRecord:
    """The definitions version recorded in each namespace of the configured prefix and events topic."""
    return RedisDefinitionsRecord(client, settings.key_prefix, settings.events_topic)


async def refuse_marked(settings: Settings, client: aioredis.Redis, namespace: str | None = None) -> None:
    """`refuse_rewritten` for a worker's namespace (or `namespace`; NamespaceRefused, exit 3): one a replay or
    drop rewrites now, or left half done. At start-up, and again at every claim (`Worker.rewritten`)."""
    from streams.store.namespace_writers import refuse_rewritten
    from streams.store.namespaces import active_namespace

    keys = keyspace(settings if namespace is None else settings.model_copy(update={"namespace": namespace}))
    await refuse_rewritten(client, keys, await active_namespace(client, settings.key_prefix))


async def check_definitions(settings: Settings, client: aioredis.Redis, mine: str) -> None:
    """`definitions_rule` at start-up: raises DefinitionsMismatch, or records the namespace's version."""
    assert settings.namespace is not None, "resolve the namespace first"
    record = definitions_record(settings, client)
    record_count = await check_partitions(record, settings.namespace, settings.topic_partitions)
    await check_claim(record, settings.namespace, mine, settings.adopt_definitions)
    await record_count()


async def record_definitions(client: aioredis.Redis, keys: KeySpace, version: str, partitions: int) -> None:
    """The namespace now holds this version, keyed for this partition count (a replay built it); a YAML
    kept for another version goes."""
    record = RedisDefinitionsRecord(client, keys.prefix, keys.topic)
    await record.record(keys.namespace, version, adopted=False)
    await record.record_partitions(keys.namespace, partitions)


def redis_client(settings: Settings, **options: Any) -> aioredis.Redis:
    """The asyncio client of the configured Redis (single server or cluster: streams/store/connection.py)
    with the configured timeouts and TLS; `options` add or override redis-py connection options."""
    defaults: dict[str, Any] = {
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
        "health_check_interval": 30,
    }
    return connection.async_client(
        settings.redis_url, settings.redis_cluster, **{**defaults, **settings.redis_tls(), **options}
    )


def sync_redis(settings: Settings, **options: Any) -> redis.Redis:
    """The blocking client of the configured Redis (single server or cluster), TLS included."""
    return connection.sync_client(
        settings.redis_url, settings.redis_cluster, **{**settings.redis_tls(), **options}
    )


async def ensure_topics(settings: Settings, topics: Sequence[str] | None = None) -> None:
    """Create the events, transitions and dead-letter topics (or these `topics`) with the configured
    partitions if absent (their replication and min.insync.replicas: streams/topics/replication.py, which
    also logs what exists); refuse an events topic of another partition count (`PartitionCountChanged`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security())
    await admin.start()
    try:
        wanted = topics or [settings.events_topic, settings.transitions_topic, settings.dlq_topic]
        created = await replication.create_missing(
            admin, wanted, settings.topic_partitions, settings.topic_replication
        )
        logs.topics_created(created)  # their first "not the leader yet" is no alarm
        await message_limit.learn(admin, [t for t in wanted if t != settings.events_topic])
        if settings.events_topic in wanted:
            await check_events_topic(admin, settings.events_topic, settings.topic_partitions)
    finally:
        await admin.close()


async def wait_for_services(
    settings: Settings, note: Callable[[str], None], kafka: bool = True, redis: bool = True
) -> None:
    """Wait (up to SEGSTREAM_CONNECT_TIMEOUT_S in all) until Kafka and Redis answer, before anything is
    created or written; ServiceUnreachable (exit code 4) when one does not."""
    deadline = time.monotonic() + settings.connect_timeout_s
    if kafka:
        await wait_for(
            "Kafka",
            settings.kafka_bootstrap,
            lambda: _kafka_answers(settings),
            retry_on=(OSError,),
            timeout_s=settings.connect_timeout_s,
            note=note,
            advice="start it (python -m streams.devstack up) or fix SEGSTREAM_KAFKA_BOOTSTRAP",
        )
    if redis:
        await wait_for_redis(
            lambda: redis_client(settings),
            without_password(settings.redis_url),
            timeout_s=max(0.0, deadline - time.monotonic()),
            note=note,
        )


async def _kafka_answers(settings: Settings) -> None:
    """One metadata round trip; aiokafka's own ERROR line per refused connection is muted meanwhile (we
    say it once, in our words)."""
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **settings.kafka_security())
    try:
        await admin.start()
        await admin.list_topics()
    except KafkaConnectionError:
        raise ConnectionError("no broker answered") from None
    except KafkaError as exc:  # a broker still starting: wait; refused credentials: no
        if isinstance(exc, KafkaTimeoutError) or exc.retriable:
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
        raise
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        client_log.setLevel(level)


def producer(settings: Settings) -> AIOKafkaProducer:
    """acks=all: a transition is acknowledged once every in-sync replica holds it (at least the brokers'
    min.insync.replicas: 2 of 3 on the local 3-broker stack; Kafka's stock 1 is raised to 2 on the topics we
    create with 3 replicas, streams/topics/replication.py), so a leader's
    crash right after the ack loses nothing; acks=1 would lose what the dead leader had not yet copied.
    Idempotence: the batches aiokafka resends after a leader's loss (connection reset, NOT_LEADER) are
    written once. The default delivery
    timeout (request_timeout_ms, 40 s) outlasts a leader election (the broker session timeout, 6-9 s, measured
    in docs/reliability.md); a batch that still fails is published again by the pipeline's retry (same
    transition ids, at least once)."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=1 << 20,
        **settings.kafka_security(),
    )


def consumer(settings: Settings) -> AIOKafkaConsumer:
    """A broker's loss needs no setting here: a fetch from the dead leader fails, the client refreshes its
    metadata and fetches from the new leader; a dead group coordinator is looked up again (the group's state
    is in __consumer_offsets, replicated). The offsets that count are Redis's, committed with the state
    (`streams.store`), so a Kafka commit lost in the failover is only a stale lag figure."""
    lenient_records.install()  # a header name that is not UTF-8 must not stop the partition
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=32 << 20,
        fetch_min_bytes=settings.kafka_fetch_min_bytes,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        isolation_level="read_committed",
        **settings.kafka_security(),
    )


@dataclass
class Runtime:
    settings: Settings
    worker: Worker
    redis: aioredis.Redis


@asynccontextmanager
async def worker_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Everything a worker needs, started in order and closed in reverse."""
    definitions = worker_definitions(settings)
    await ensure_topics(settings)
    message_limit.check_dead_letters(settings.dlq_topic)  # the worker's own: `sample` never writes it
    client = redis_client(settings)
    pinned = settings.namespace is not None
    try:
        await refuse_eviction(client)  # before anything is written
        settings = await resolve_namespace(settings, client)
        await refuse_marked(settings, client)  # before the definitions record takes anything
        await check_definitions(settings, client, definitions.version)
        await check_mode(settings, client, keyspace(settings))
    except BaseException:
        await client.aclose()
        raise
    prod, cons = producer(settings), consumer(settings)
    store = RedisStateStore(client, keyspace(settings))
    follow = None if pinned else follow_active(settings, client)
    worker = Worker(settings, definitions, store, prod, cons, metrics=Metrics(), follow=follow)
    worker.recorded = definitions_record(settings, client)  # the rule again at every claim
    worker.rewritten = partial(refuse_marked, settings, client)  # and this one
    await prod.start()
    try:
        cons.subscribe([settings.events_topic], listener=worker.listener())
        try:
            await cons.start()
        except BaseException:  # e.g. a session timeout the brokers refuse: leave no consumer behind
            await _bounded(cons.stop(), "consumer")
            raise
        try:
            yield Runtime(settings, worker, client)
        finally:
            await _bounded(cons.stop(), "consumer")
    finally:
        await _bounded(prod.stop(), "producer")
        await client.aclose()


async def _bounded(closing: Coroutine[Any, Any, None], what: str, timeout_s: float = 10.0) -> None:
    """Closing a client may wait on an unreachable broker (leaving the group, flushing): a stop must end."""
    try:
        await asyncio.wait_for(closing, timeout_s)
    except (TimeoutError, KafkaError) as exc:
        log.warning("closing the %s: %s", what, exc or "timed out")
