"""Exit codes of `segstream` and the one line an expected failure ends with (README "Exit codes").

Why one place: an operator (or a supervisor such as systemd or Kubernetes) acts on the code, a person on the
line; a traceback helps neither unless asked for (`segstream --debug ...`). The codes:

- 0 done; 130 interrupted;
- 1 unexpected failure: its traceback is printed too (a bug to report, or a case to add here);
- 2 usage or bad input: arguments, settings (Kafka / Redis credentials too), definitions file, CSV mapping,
  a topic that does not exist or cannot be created, the API's port in use;
- 3 refused by a guard: unknown or active namespace, one a running replay or drop holds, workers running,
  definitions mismatch, a skewed slot layout under `doctor --strict`;
- 4 a service unreachable: Kafka, Redis (the worker and the API wait SEGSTREAM_CONNECT_TIMEOUT_S first);
- 5 the worker's graceful stop timed out; 6 the worker was fenced out and stalled (streams/cli.py).

An exception may carry its own code as an `exit_code` attribute (ServiceUnreachable, NamespaceError).
"""

from __future__ import annotations

import errno

from aiokafka.errors import (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    InvalidSessionTimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from pydantic import ValidationError
from redis.exceptions import AuthenticationError, MovedError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from segmentation import DefinitionsError
from streams.settings import Settings, without_password
from streams.store.connection import is_cluster
from streams.store.reachable import no_cluster_node

UNEXPECTED, USAGE, REFUSED, UNREACHABLE = 1, 2, 3, 4
_DEVSTACK = "start it (python -m streams.devstack up)"
_REDIS, _KAFKA = "SEGSTREAM_REDIS_URL", "SEGSTREAM_KAFKA_BOOTSTRAP"


def failure(exc: Exception, settings: Settings | None) -> tuple[int, str]:
    """(exit code, what went wrong and what to do) for a failure; never the traceback."""
    own = getattr(exc, "exit_code", None)
    if isinstance(own, int):
        return own, str(exc)
    if isinstance(exc, (ValidationError, DefinitionsError)):
        return USAGE, f"configuration error: {config_error(exc)}"
    redis_url = without_password(settings.redis_url) if settings else _REDIS
    kafka = settings.kafka_bootstrap if settings else _KAFKA
    if isinstance(exc, AuthenticationError):
        return USAGE, f"Redis at {redis_url} refused the credentials: {exc}; fix {_REDIS}"
    if isinstance(exc, MovedError) and not (
        settings and is_cluster(settings.redis_url, settings.redis_cluster)
    ):
        # a node of a Redis Cluster taken for a single server: its first key of another node's slot
        return USAGE, (
            f"Redis at {redis_url} is a node of a Redis Cluster (it answered MOVED): use redis+cluster:// in"
            f" {_REDIS} (or SEGSTREAM_REDIS_CLUSTER=true)"
        )
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)) or no_cluster_node(exc):
        return UNREACHABLE, f"cannot reach Redis at {redis_url}: {_DEVSTACK} or fix {_REDIS} ({exc})"
    if isinstance(exc, (AuthenticationFailedError, SaslAuthenticationFailed)):
        return USAGE, f"Kafka at {kafka} refused the credentials: fix SEGSTREAM_KAFKA_SASL_* ({exc})"
    if isinstance(exc, (ClusterAuthorizationFailedError, TopicAuthorizationFailedError)):
        return USAGE, f"Kafka at {kafka} refused this user an operation: grant it (docs/security.md) ({exc})"
    if isinstance(exc, InvalidSessionTimeoutError):
        timeout = f"={settings.kafka_session_timeout_ms}" if settings else ""
        return USAGE, (
            f"Kafka at {kafka} refused SEGSTREAM_KAFKA_SESSION_TIMEOUT_MS{timeout}: it must lie within the"
            " brokers' group.min.session.timeout.ms and group.max.session.timeout.ms (6000 and 1800000 unless"
            " changed)"
        )
    if isinstance(exc, (KafkaConnectionError, KafkaTimeoutError)):
        return UNREACHABLE, f"cannot reach Kafka at {kafka}: {_DEVSTACK} or fix {_KAFKA}"  # exc: the address
    if isinstance(exc, (ConnectionError, TimeoutError)):  # the builtins, from a client not named above
        return UNREACHABLE, f"a service did not answer ({type(exc).__name__}: {exc}): is it running?"
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return USAGE, f"{exc}: stop what listens there, or choose another port (--port, SEGSTREAM_API_PORT)"
    if isinstance(exc, OSError):  # a file named on the command line or in the settings
        return USAGE, str(exc)
    return UNEXPECTED, f"unexpected {type(exc).__name__}: {exc} (traceback above)"


def config_error(exc: Exception) -> str:
    """A settings error names the variable and the problem, never the (possibly secret) value given."""
    if isinstance(exc, ValidationError):
        return "; ".join(_setting_error(e["loc"], e["msg"]) for e in exc.errors())
    return str(exc)


def _setting_error(loc: tuple[int | str, ...], message: str) -> str:
    """`SEGSTREAM_<NAME>: <problem>`; a check across settings (no location) names its variables itself."""
    if not loc:
        return message.removeprefix("Value error, ")
    return f"SEGSTREAM_{'_'.join(map(str, loc)).upper()}: {message}"
