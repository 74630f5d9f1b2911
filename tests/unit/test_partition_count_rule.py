"""The partition-count rule is one function: workers, admin commands and readers refuse the same namespaces
with the same reason, each with its own error type."""

from __future__ import annotations

import pytest

from streams.store.definitions_record import partition_count_conflict, recorded_partitions
from streams.store.stored_state import StoredFormatError
from streams.worker.namespace_follow import PartitionsMismatch, partitions_rule


def test_the_same_count_or_none_recorded_passes() -> None:
    assert partition_count_conflict("ns", 4, 4) is None
    assert partition_count_conflict("ns", None, 4) is None
    partitions_rule("ns", None, 2)


def test_another_count_is_refused_with_the_same_reason_for_workers_and_readers() -> None:
    reason = partition_count_conflict("blue", 4, 2)
    assert reason is not None
    assert "'blue' was built for 4 partitions and SEGSTREAM_TOPIC_PARTITIONS is 2" in reason
    assert "set SEGSTREAM_TOPIC_PARTITIONS=4" in reason
    with pytest.raises(PartitionsMismatch) as raised:
        partitions_rule("blue", 4, 2)
    assert str(raised.value).startswith(reason) and "Refusing to write into it" in str(raised.value)


@pytest.mark.parametrize("stored", [b"4", "4"])
def test_a_stored_count_reads_back(stored: bytes | str) -> None:
    assert recorded_partitions(stored) == 4
    assert recorded_partitions(None) is None


@pytest.mark.parametrize("stored", [b"", b"0", b"-2", b"four", b"4.0", "\u0664"])
def test_a_damaged_count_is_said_to_be_damaged_not_a_traceback(stored: bytes | str) -> None:
    with pytest.raises(StoredFormatError, match="not a partition count"):
        recorded_partitions(stored)
