"""Our murmur2 partitioner is Kafka's default one: a customer's events, state and transitions share a
partition only if every key hashes as the producers' clients hash it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as reference

from streams.store import partitioning
from streams.store.partitioning import murmur2, partition_for, partition_of_key


@settings(max_examples=2000)
@given(st.binary(max_size=300))
def test_murmur2_is_the_java_clients_on_any_bytes(data: bytes) -> None:
    assert murmur2(data) == reference(data)


@given(st.text(max_size=130), st.integers(min_value=1, max_value=10_000))
def test_a_customer_and_its_record_key_have_the_default_partitioners_partition(cid: str, count: int) -> None:
    expected = (reference(cid.encode()) & 0x7FFFFFFF) % count
    assert partition_for(cid, count) == expected
    assert partition_of_key(cid.encode(), count) == expected


# Kafka's own vectors (clients' UtilsTest.testMurmur2, signed ints there): a shared error with the reference
# implementation would still be caught
_JAVA = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_the_java_clients_own_vectors() -> None:
    assert {key: murmur2(key) for key in _JAVA} == {key: value % 2**32 for key, value in _JAVA.items()}


def test_keys_seen_again_keep_their_partition(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uncompiled, the partitions of the last keys are kept (cleared when full); compiled, none are: either
    way every call gives the default partitioner's answer."""
    if not partitioning.COMPILED:
        monkeypatch.setattr(partitioning, "_MEMO_LIMIT", 3)
        partitioning._partition_of.clear()
    keys = [f"c{n:05d}".encode() for n in range(10)]
    for _ in range(2):  # misses, then (after clears) hits
        for key in keys:
            for count in (1, 4, 7):
                assert partition_of_key(key, count) == (reference(key) & 0x7FFFFFFF) % count
    assert len(partitioning._partition_of) <= (0 if partitioning.COMPILED else 3)
