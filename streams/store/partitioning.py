"""Which partition holds a customer: Kafka's default partitioner (murmur2 of the key), as producers use.

Why a murmur2 of our own: kafka-python's is pure Python (~2.6 µs a key), and the worker hashes every
record's key (to check it is in its customer's partition) and every transition's (to publish it there), a
file replay every line's. A memo hid it while the population fit in it, never for a real one. This module is
compiled with the write path (`streams.core.choice.WRITE_PATH`) on 64-bit machine integers (`i64`: mypyc's
native int; plain ints to the pure-Python core), where a key of ~16 bytes takes ~50 ns.
`tests/unit/test_partitioning.py` checks it against kafka-python's reference over arbitrary keys.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

__all__ = ["murmur2", "partition_for", "partition_of_key"]

_MASK: Final = 0xFFFFFFFF
_SEED: Final = 0x9747B28C
_M: Final = 0x5BD1E995  # the mixing constant


def _times_m(x: i64) -> i64:
    """x * m mod 2**32 for 0 <= x < 2**32 (the product stays under 2**63)."""
    return (x * _M) & _MASK


def murmur2(data: bytes) -> int:
    """MurmurHash2 of `data` as the Java client's `Utils.murmur2` (unsigned, 32 bits)."""
    length: i64 = len(data)
    h: i64 = _SEED ^ length
    end: i64 = length - length % 4
    i: i64 = 0
    while i < end:
        k: i64 = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = _times_m(k)
        k = _times_m(k ^ (k >> 24))
        h = _times_m(h) ^ k
        i += 4
    extra = length - end
    if extra >= 3:
        h ^= data[end + 2] << 16
    if extra >= 2:
        h ^= data[end + 1] << 8
    if extra >= 1:
        h = _times_m(h ^ data[end])
    h = _times_m(h ^ (h >> 13))
    return h ^ (h >> 15)


def partition_for(customer_id: str, partitions: int) -> int:
    """Same formula as the Java client's and aiokafka's default partitioner for keyed records."""
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


def partition_of_key(key: bytes, count: int) -> int:
    """`partition_for` of a record key. The key's bytes are hashed as they are, as Kafka's partitioner does:
    a UTF-8 customer id gives its customer's partition, and a key that is no UTF-8 at all (a record a
    producer keyed by binary, dead-lettered with its original key) has one too instead of failing to decode,
    which stopped the worker at every restart on that record."""
    return (murmur2(key) & 0x7FFFFFFF) % count
