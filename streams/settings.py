"""Runtime configuration: environment variables prefixed SEGSTREAM_ (pydantic-settings)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, FilePath, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the worker, the CLI and the read side need; nothing connects when this is built."""

    model_config = SettingsConfigDict(env_prefix="SEGSTREAM_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # TLS files must exist (FilePath): a missing one was taken for an unreachable service (exit 4)
    kafka_ssl_cafile: FilePath | None = None
    kafka_ssl_certfile: FilePath | None = None
    kafka_ssl_keyfile: FilePath | None = None

    redis_url: str = "redis://127.0.0.1:6379/0"  # rediss:// for TLS; user:password@ for AUTH
    # Redis Cluster: a redis+cluster:// (rediss+cluster://) URL, or this set with a plain one (connection.py)
    redis_cluster: bool = False
    redis_timeout_s: float = Field(10.0, gt=0)  # a reply slower than this counts as an outage: retry
    connect_timeout_s: float = Field(30.0, ge=0)  # start-up: wait this long for Kafka / Redis, then exit 4
    redis_tls_ca_file: FilePath | None = (
        None  # rediss://: CA that signed the server's certificate (else system CAs)
    )
    redis_tls_cert_file: FilePath | None = None  # client certificate, when the server asks for one
    redis_tls_key_file: FilePath | None = None

    events_topic: str = "customer-events"
    transitions_topic: str = "segment-transitions"
    dlq_topic: str = "customer-events.dlq"
    topic_partitions: int = Field(4, ge=1)
    topic_replication: int | None = Field(None, ge=1)  # None: the brokers' default.replication.factor
    group_id: str = Field("segstream", min_length=1)  # the broker refuses an empty one (InvalidGroupId)

    definitions_file: Path | None = None  # None: the packaged defaults
    key_prefix: str = "segstream"
    adopt_definitions: bool = False  # write into a namespace that records other definitions (lazy rollout)
    namespace: str | None = None  # None: the active namespace (streams.store.namespaces), followed on promote

    batch_max_events: int = Field(8000, ge=1)  # a backlog writes each customer once per batch (~1.5x/event)
    # a fetch returns once it holds kafka_fetch_min_bytes or waited kafka_fetch_max_wait_ms: 1 byte gives the
    # lowest latency; more makes bigger batches at a steady rate (less CPU per event), docs/benchmarks.md
    kafka_fetch_min_bytes: int = Field(1, ge=1)
    kafka_fetch_max_wait_ms: int = Field(500, ge=0)
    batch_max_ms: int = Field(100, ge=1)
    # a worker that stops heartbeating (killed, frozen, cut off) keeps its partitions this long before the
    # group gives them to the others; the broker accepts group.min/max.session.timeout.ms (6 s - 30 min)
    kafka_session_timeout_ms: int = Field(10_000, ge=1)
    kafka_heartbeat_interval_ms: int = Field(3_000, ge=1)  # at most a third of the session timeout
    state_cache_size: int = Field(200_000, ge=0)  # states a worker process keeps in memory, all partitions
    mode: Literal["live", "replay"] = "live"
    # live (and replay --reject-future): an event time later than its record's + this: DLQ; at most a century
    max_future_skew_s: float = Field(86_400.0, gt=0, le=36_500 * 86_400)
    sweep_interval_ms: int = Field(1000, ge=10)
    sweep_max_customers: int = Field(5000, ge=1)
    retry_max_backoff_s: float = Field(10.0, gt=0)
    progress_interval_s: float = Field(30.0, ge=0)  # worker: one progress line this often; 0: none
    log_format: Literal["text", "json"] = "text"  # json: one object per log line (or --log-format json)
    stop_timeout_s: float = Field(20.0, gt=0)  # SIGTERM: a graceful stop longer than this is cut short
    fenced_grace_s: float = Field(60.0, gt=0)  # fenced out yet still assigned this long: exit (code 6)
    dlq_max_value_bytes: int = Field(900_000, ge=1024)  # a longer dead-letter value is cut (headers say so)
    history_size: int = Field(64, ge=1)  # transitions kept per customer for `as_of` and "why" (read side)
    api_host: str = "127.0.0.1"  # `segstream api` / `python -m streams.read.api`
    api_port: int = Field(8080, ge=0, le=65535)
    # HTTP API security (docs/security.md): key lines `<name> sha256:<hex> <scopes>` from a file or a variable
    api_keys_file: Path | None = None
    api_keys: SecretStr | None = None
    api_metrics_public: bool = False  # true: /metrics without a key (a scraper on a trusted network)
    api_tls_certfile: Path | None = None  # both set: the API serves HTTPS only
    api_tls_keyfile: Path | None = None
    api_request_timeout_s: float = Field(5.0, gt=0)  # a request taking longer answers 503 + Retry-After
    api_redis_max_connections: int = Field(64, ge=1)  # read side pool: a busy pool makes requests wait...
    api_redis_pool_timeout_s: float = Field(1.0, gt=0)  # ...this long, then 503 + Retry-After

    @model_validator(mode="after")
    def _cluster_has_database_0_only(self) -> Settings:
        """Redis Cluster has database 0 only: say so at start-up, in the settings' words."""
        scheme = self.redis_url.split("://", 1)[0].lower()  # as streams/store/connection.py's is_cluster
        cluster = self.redis_cluster or scheme in ("redis+cluster", "rediss+cluster")
        database = urlsplit(self.redis_url).path.strip("/")
        if cluster and database not in ("", "0"):
            raise ValueError(
                f"SEGSTREAM_REDIS_URL names database {database}, but a Redis Cluster has database 0 only"
            )
        if not cluster and "," in urlsplit(self.redis_url).netloc:
            raise ValueError(
                "SEGSTREAM_REDIS_URL names several nodes, which only a Redis Cluster has: use"
                " redis+cluster:// (or SEGSTREAM_REDIS_CLUSTER=true)"
            )
        return self

    @model_validator(mode="after")
    def _heartbeats_fit_in_a_session(self) -> Settings:
        """Kafka's rule: a member heartbeats at least three times per session timeout, or one late heartbeat
        makes the group drop it."""
        if self.kafka_heartbeat_interval_ms * 3 > self.kafka_session_timeout_ms:
            raise ValueError(
                f"SEGSTREAM_KAFKA_HEARTBEAT_INTERVAL_MS={self.kafka_heartbeat_interval_ms} is more than a"
                f" third of SEGSTREAM_KAFKA_SESSION_TIMEOUT_MS={self.kafka_session_timeout_ms}: lower it"
            )
        return self

    @model_validator(mode="after")
    def _sasl_has_credentials(self) -> Settings:
        """Every mechanism allowed here (PLAIN, SCRAM) needs both; aiokafka refuses PLAIN without them."""
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_") and (
            self.kafka_sasl_username is None or self.kafka_sasl_password is None
        ):
            raise ValueError(
                f"SEGSTREAM_KAFKA_SECURITY_PROTOCOL={protocol} needs SEGSTREAM_KAFKA_SASL_USERNAME and"
                " SEGSTREAM_KAFKA_SASL_PASSWORD (and SEGSTREAM_KAFKA_SASL_MECHANISM unless PLAIN)"
            )
        return self

    @model_validator(mode="after")
    def _topics_are_distinct(self) -> Settings:
        """One topic in two roles: dead letters written to the events topic are read back, dead-lettered
        again and written again for ever; transitions read as events; dead letters among the transitions."""
        roles = {
            "SEGSTREAM_EVENTS_TOPIC": self.events_topic,
            "SEGSTREAM_TRANSITIONS_TOPIC": self.transitions_topic,
            "SEGSTREAM_DLQ_TOPIC": self.dlq_topic,
        }
        names = list(roles)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                if roles[first] == roles[second]:
                    raise ValueError(f"{second} names the same topic as {first}: give each its own topic")
        return self

    def as_environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """These settings as SEGSTREAM_* variables (secrets unmasked), to start a worker process with them."""
        env = dict(os.environ if base is None else base)
        for name, value in self.model_dump().items():
            if value is not None:
                plain = value.get_secret_value() if isinstance(value, SecretStr) else value
                env[f"SEGSTREAM_{name.upper()}"] = str(plain)
        return env

    def redis_tls(self) -> dict[str, Any]:
        """Keyword arguments of every redis-py client for a `rediss://` URL (empty for `redis://`)."""
        if not self.redis_url.startswith(("rediss://", "rediss+cluster://")):
            return {}
        files = {
            "ssl_ca_certs": self.redis_tls_ca_file,
            "ssl_certfile": self.redis_tls_cert_file,
            "ssl_keyfile": self.redis_tls_key_file,
        }
        return {name: str(path) for name, path in files.items() if path is not None}

    def kafka_security(self) -> dict[str, Any]:
        """Keyword arguments shared by every aiokafka client."""
        kwargs: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            kwargs["sasl_mechanism"] = self.kafka_sasl_mechanism
            kwargs["sasl_plain_username"] = self.kafka_sasl_username
            kwargs["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            from aiokafka.helpers import create_ssl_context

            kwargs["ssl_context"] = create_ssl_context(
                cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None,
                certfile=str(self.kafka_ssl_certfile) if self.kafka_ssl_certfile else None,
                keyfile=str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
            )
        return kwargs


def without_password(url: str) -> str:
    """A Redis URL fit for a log line: its password replaced by *** (a cluster URL may name several nodes),
    also a `password` query argument, which redis-py's `from_url` accepts as well as the userinfo."""
    parts = urlsplit(url)
    query = "&".join(
        "password=***" if item.partition("=")[0] == "password" else item for item in parts.query.split("&")
    )
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        hosts = f"{userinfo.partition(':')[0]}:***@{hosts}"
    elif at:
        hosts = f"{userinfo}@{hosts}"
    return urlunsplit(parts._replace(netloc=hosts, query=query))
