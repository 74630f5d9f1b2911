"""The events topic must have exactly SEGSTREAM_TOPIC_PARTITIONS partitions, checked at start and on every
assignment.

Why: a customer's state lives in the partition its key maps to (`partition_for(customer_id, N)`, the same N
for every reader, replay and worker). Partitions added to the topic while it is in use move some customers'
new events to another partition, whose worker holds no state for them: their history splits in two and
updates are lost (an outside check saw 112 of 200 customers keep one order of two). Kafka cannot move events
back, so a worker refuses to start on such a topic, and a running one that is assigned a partition beyond
N stops before applying any of it, saying how to rebuild. Until the worker sees the new partitions
(clients refresh metadata every 5 min by default), events of customers the new count moves into another
partition below N are dead letters: `decode` checks each record's partition against its key.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["PartitionCountChanged", "check_events_topic", "refuse_assigned"]

_REBUILD = (  # docs/capacity.md, "Partitions"
    "partitions added to a topic in use need `segstream replay` into a new namespace with"
    " SEGSTREAM_TOPIC_PARTITIONS={count}, then `segstream promote`"
)


class PartitionCountChanged(RuntimeError):
    """The events topic's partitions differ from SEGSTREAM_TOPIC_PARTITIONS: nothing of it is applied."""

    exit_code = 3  # refused by a guard (streams/errors.py; topics/ imports no other folder)


async def check_events_topic(admin: AIOKafkaAdminClient, topic: str, configured: int) -> None:
    """Refuse to start on an events topic with another partition count than the configured one."""
    described = await admin.describe_topics([topic])
    count = len(described[0].get("partitions") or []) if described else 0
    if count and count != configured:
        raise PartitionCountChanged(
            f"topic {topic!r} has {count} partitions but SEGSTREAM_TOPIC_PARTITIONS is {configured}: set it"
            f" to {count} if the topic was made so; " + _REBUILD.format(count=count)
        )


def refuse_assigned(topic: str, partitions: set[int], configured: int, count: int) -> PartitionCountChanged:
    """The error for partitions at or above the configured count that Kafka assigned to a running worker
    (`count`: the topic's partitions as the consumer's metadata knows them)."""
    listed = ", ".join(map(str, sorted(partitions)))
    return PartitionCountChanged(
        f"partition {listed} of topic {topic!r} assigned, but SEGSTREAM_TOPIC_PARTITIONS is {configured}:"
        " it would split customers' events over two partitions; stopped before applying any of it; "
        + _REBUILD.format(count=count)
    )
