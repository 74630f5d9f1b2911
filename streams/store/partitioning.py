"""Which partition holds a customer: Kafka's default partitioner (murmur2 of the key), as producers use."""

from __future__ import annotations

from kafka.partitioner.default import murmur2


def partition_for(customer_id: str, partitions: int) -> int:
    """Same formula as the Java client's and aiokafka's default partitioner for keyed records."""
    hashed: int = murmur2(customer_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions
