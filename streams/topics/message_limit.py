"""The record-batch size each output topic takes, read from its `max.message.bytes` when topics are ensured.

The worker's producer packs up to 1 MiB of records into one batch (`streams/bootstrap.py`), and a topic whose
`max.message.bytes` is lower refuses a whole batch of records that each fit it (MessageSizeTooLargeError, not
retriable): the worker stopped, and again at every restart on the same batch. Splitting on that refusal is no
way out: the idempotent producer's sequence for the partition is then broken (OutOfOrderSequenceNumber on
the next batch). So the limit is known before anything is sent, and `publish` keeps each batch under it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from streams.topics.replication import defaults_in

log = logging.getLogger("segstream.topics")
MAX_MESSAGE: Final = "max.message.bytes"
BATCH_HEADER: Final = 100  # a record batch's own bytes beyond its records (61 in format v2), with a margin
_bounds: dict[str, int] = {}


async def learn(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> None:
    """Read each topic's `max.message.bytes` (DescribeConfigs, a right the worker's user has already,
    docs/security.md); a topic whose limit cannot be read keeps the producer's batch size, with a WARNING."""
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    for topic in topics:
        try:
            answer = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, {MAX_MESSAGE: None})]
            )
            limit = defaults_in(answer[0].to_object()).get(MAX_MESSAGE)
        except (KafkaError, LookupError, ValueError) as exc:
            log.warning("could not read %s of topic %s (%s): batches of up to 1 MiB", MAX_MESSAGE, topic, exc)
            continue
        if limit is not None:
            _bounds[topic] = max(1, limit - BATCH_HEADER)


DEAD_LETTER_FLOOR: Final = 8_192
"""The least `max.message.bytes` a dead-letter topic may have: a dead letter takes up to ~4 KB beyond its
value (its key cut to 1,024 bytes, the error headers), and its value is cut to what is left
(`publish_outcome`)."""


class TopicLimitTooLow(ValueError):
    """A dead-letter topic whose `max.message.bytes` cannot hold a dead letter (exit 2: configuration)."""

    exit_code = 2


def check_dead_letters(topic: str) -> None:
    """Refuse, at start, a dead-letter topic too small for a dead letter: the first bad record would be
    refused there (not retriable) and stop the worker on it at every restart."""
    bound = _bounds.get(topic)
    if bound is not None and bound + BATCH_HEADER < DEAD_LETTER_FLOOR:
        raise TopicLimitTooLow(
            f"topic {topic} (SEGSTREAM_DLQ_TOPIC) has {MAX_MESSAGE}={bound + BATCH_HEADER}: a dead letter"
            f" needs at least {DEAD_LETTER_FLOOR} (its key and error headers take up to ~4 KB); raise it"
        )


def batch_bound(topic: str) -> int | None:
    """The most record bytes one batch to `topic` may hold; None when unknown (the producer's bound)."""
    return _bounds.get(topic)
