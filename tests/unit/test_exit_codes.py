"""The exit code and the line of each kind of failure (streams/errors.py, README "Exit codes")."""

from __future__ import annotations

import errno

import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from segmentation import DefinitionsError
from streams.errors import failure
from streams.replay.csv_orders import CsvMappingError
from streams.replay.sources import SourceError
from streams.settings import Settings
from streams.store.namespaces import NamespaceError, NamespaceRefused
from streams.store.reachable import ServiceUnreachable
from streams.store.slot_walk import SlotMigrating

SETTINGS = Settings(redis_url="redis://:s3cret@db.example:6379/0", kafka_bootstrap="k1:9092")


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (DefinitionsError("defs.yaml: version: expected a string"), 2, ["configuration error", "defs.yaml"]),
        (NamespaceError("invalid namespace name 'a:b'"), 2, ["invalid"]),
        (SourceError("topic 't' not found"), 2, ["'t'"]),
        (OSError(errno.EADDRINUSE, "address already in use"), 2, ["in use", "--port"]),
        (FileNotFoundError(errno.ENOENT, "No such file", "x.csv"), 2, ["x.csv"]),
        (AuthenticationError("invalid password"), 2, ["refused the credentials", "SEGSTREAM_REDIS_URL"]),
        (SaslAuthenticationFailed("bad password"), 2, ["Kafka at k1:9092 refused the credentials"]),
        (NamespaceRefused("unknown namespace 'x' (known: main (active))"), 3, ["known: main"]),
        (SlotMigrating(7638, "began to move from h:7001"), 3, ["slot 7638 began to move", "run it again"]),
        (ServiceUnreachable("Kafka at k1:9092 did not answer"), 4, ["Kafka"]),
        (RedisConnectionError("Error 111"), 4, ["db.example", "SEGSTREAM_REDIS_URL"]),
        (KafkaConnectionError("Unable to bootstrap"), 4, ["k1:9092", "SEGSTREAM_KAFKA_BOOTSTRAP"]),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), 4, ["did not answer"]),
        (ZeroDivisionError("division by zero"), 1, ["unexpected ZeroDivisionError", "traceback above"]),
    ],
)
def test_failure_maps_to_its_code_and_a_line(exc: Exception, code: int, words: list[str]) -> None:
    got, line = failure(exc, SETTINGS)
    assert got == code and all(word in line for word in words), line
    assert "\n" not in line and "s3cret" not in line


def test_an_exception_without_a_code_is_unexpected() -> None:
    assert failure(CsvMappingError("columns not in the header"), None)[0] == 2
    assert failure(ValueError("x"), None)[0] == 1
