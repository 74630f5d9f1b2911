"""Which partition holds a customer: Kafka's default partitioner (murmur2 of the key), as producers use.

Why a murmur2 of our own: kafka-python's is pure Python (~2.6 µs a key), and the worker hashes every
record's key (to check it is in its customer's partition) and every transition's (to publish it there), a
file replay every line's. A memo hid it while the population fit in it, never for a real one. This module is
compiled with the write path (`streams.core.choice.WRITE_PATH`) on 64-bit machine integers (`i64`: mypyc's
native int; plain ints to the pure-Python core), where a key of ~16 bytes takes ~50 ns. The pure-Python
core (~3 µs a key) keeps the partitions of the last keys seen, as before.
`tests/unit/test_partitioning.py` checks it against kafka-python's reference over arbitrary keys.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

__all__ = ["murmur2", "partition_for", "partition_of_key"]

_MASK: Final = 0xFFFFFFFF
_SEED: Final = 0x9747B28C
_M: Final = 0x5BD1E995  # the mixing constant
COMPILED: Final = not __file__.endswith((".py", ".pyc"))  # mypyc's build (`streams.core.choice`)
_MEMO_LIMIT: Final = 100_000
_partition_of: dict[tuple[bytes, int], int] = {}  # (key, partition count) -> partition, uncompiled only


def murmur2(data: bytes) -> int:
    """MurmurHash2 of `data` as the Java client's `Utils.murmur2` (unsigned, 32 bits). Each product of a
    32-bit value by m stays under 2**63."""
    length: i64 = len(data)
    h: i64 = _SEED ^ length
    end: i64 = length - length % 4
    i: i64 = 0
    while i < end:
        k: i64 = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
        i += 4
    extra = length - end
    if extra >= 3:
        h ^= data[end + 2] << 16
    if extra >= 2:
        h ^= data[end + 1] << 8
    if extra >= 1:
        h = ((h ^ data[end]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(customer_id: str, partitions: int) -> int:
    """Same formula as the Java client's and aiokafka's default partitioner for keyed records."""
    return (murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


def partition_of_key(key: bytes, count: int) -> int:
    """`partition_for` of a record key. The key's bytes are hashed as they are, as Kafka's partitioner does:
    a UTF-8 customer id gives its customer's partition, and a key that is no UTF-8 at all (a record a
    producer keyed by binary, dead-lettered with its original key) has one too instead of failing to decode,
    which stopped the worker at every restart on that record. Uncompiled (~2.5 µs a key), the partitions
    are kept for the last keys seen, as a worker sees the same customers batch after batch."""
    if COMPILED:
        return (murmur2(key) & 0x7FFFFFFF) % count
    cached = _partition_of.get((key, count))
    if cached is None:
        if len(_partition_of) >= _MEMO_LIMIT:
            _partition_of.clear()
        cached = _partition_of[(key, count)] = (murmur2(key) & 0x7FFFFFFF) % count
    return cached
