"""A record with a header name that is not UTF-8 reaches the worker instead of stopping its partition.

Kafka's protocol makes a header name a string, but librdkafka and raw producers may write any bytes there, and
Java consumers decode them with replacement characters. aiokafka's compiled record parser raises
UnicodeDecodeError instead, from `getmany`, at every poll: the worker stopped, and so did every worker (and
every `replay kafka:`) that took the partition after it; nothing behind that record was ever applied. Our
event contract ignores headers, so such a record is an event like any other (applied, or a dead letter for its
key or value). `install()` keeps each fetched partition's bytes, and when the fast parser fails on a name,
reads the rest of that fetch again with aiokafka's pure-Python parser, names decoded with `surrogateescape`.

This replaces internals of aiokafka 0.14 (`fetcher.MemoryRecords`, `PartitionRecords.__next__`, the Python
batch's `_buffer`): `tests/integration/test_odd_header_names.py` fails if an upgrade breaks it.
"""

from __future__ import annotations

from typing import Any

from aiokafka.consumer import fetcher
from aiokafka.record import default_records, memory_records


class _Name(bytearray):
    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytearray.decode(self, encoding, "surrogateescape")


class _Buffer(bytearray):
    """A batch's records, whose slices decode leniently (the parser slices a header name, then decodes it)."""

    def __getitem__(self, item: Any) -> Any:
        got = bytearray.__getitem__(self, item)
        return _Name(got) if isinstance(item, slice) else got


class _LenientBatch(default_records._DefaultRecordBatchPy):  # type: ignore[misc]
    def __iter__(self) -> _LenientBatch:
        super().__iter__()  # decompressed now
        self._buffer = _Buffer(self._buffer)  # type: ignore[has-type]
        return self


class _LenientRecords(memory_records._MemoryRecordsPy):  # type: ignore[misc]
    """The batches of a fetch again, leniently, from the first not fully returned yet (`after`)."""

    def __init__(self, data: bytes, after: int) -> None:
        super().__init__(data)
        self._after = after

    def next_batch(self, *args: Any) -> Any:
        while self._next_slice is not None:
            piece = self._next_slice
            self._cache_next()
            magic = piece[self.MAGIC_OFFSET]
            if magic < 2:  # message formats before Kafka 0.11: no headers
                return memory_records.LegacyRecordBatch(piece, magic)
            batch = _LenientBatch(piece)
            if batch.next_offset > self._after:
                return batch
        return None


class _Kept(memory_records.MemoryRecords):  # type: ignore[misc]
    """aiokafka's (compiled) records of one fetched partition, and their bytes for a lenient second read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.raw = data


def _lenient_next(self: Any) -> Any:
    """`PartitionRecords.__next__` (same cost per record), reading the fetch again leniently on a bad name."""
    try:
        return next(self._records_iterator)
    except StopIteration:
        self._records_iterator = None  # as aiokafka's: break a reference cycle
        raise
    except UnicodeDecodeError:
        raw = getattr(self._records, "raw", None)
        if raw is None:
            raise
        self._records = _LenientRecords(raw, self.next_fetch_offset)  # records before it were returned
        self._records_iterator = self._unpack_records()
        return next(self._records_iterator)


def install() -> None:
    """Idempotent; every consumer of the process reads leniently from then on."""
    fetcher.MemoryRecords = _Kept
    fetcher.PartitionRecords.__next__ = _lenient_next
