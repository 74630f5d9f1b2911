"""Which partition holds a customer: Kafka's default partitioner (murmur2 of the key), as producers use."""

from __future__ import annotations

from kafka.partitioner.default import murmur2


def partition_for(customer_id: str, partitions: int) -> int:
    """Same formula as the Java client's and aiokafka's default partitioner for keyed records."""
    hashed: int = murmur2(customer_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions


_CACHE_LIMIT = 100_000
_partition_of: dict[tuple[bytes, int], int] = {}
"""(key, partition count) -> partition. murmur2 is pure Python (~3 µs a key), and a worker sees the same
customers batch after batch; cleared when full, like `segmentation.instants`."""


def partition_of_key(key: bytes, count: int) -> int:
    """`partition_for` of a record key, cached. The key's bytes are hashed as they are, as Kafka's partitioner
    does: a UTF-8 customer id gives its customer's partition, and a key that is no UTF-8 at all (a record a
    producer keyed by binary, dead-lettered with its original key) has one too instead of failing to decode,
    which stopped the worker at every restart on that record."""
    cached = _partition_of.get((key, count))
    if cached is None:
        if len(_partition_of) >= _CACHE_LIMIT:
            _partition_of.clear()
        hashed: int = murmur2(key)
        cached = _partition_of[(key, count)] = (hashed & 0x7FFFFFFF) % count
    return cached
