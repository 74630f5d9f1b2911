"""What one customer write costs in the worker's pure batch step, piece by piece, on a live engagement stream.

    .venv/bin/python benchmarks/bench_customer_write.py [--events 100000] [--per-customer 120]

Why: on `bench_worker.py`'s stream the worker's CPU per event is ~12 µs for the events themselves plus
~20 µs for every customer write (one per customer per batch), so the batch size and the population move it
from ~14 to ~28 µs (first table). The second table splits a write of a year-old customer (packed state ~800
bytes, most of it its 64-id duplicate window; history ~30 entries) into its parts, with the text
conversions the write path used to make (the packed state as `surrogateescape` text, decoded per write and
encoded again for the commit) beside the bytes it makes now.

No Kafka, no Redis: the engagement sample (`segstream sample`'s default profile) in memory, one partition,
the cyclic GC off; best of 3 per figure. Machine noise moves these by ±10 %: compare within one run.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe
from segmentation import Definitions
from segmentation.compressed import Compressed
from segmentation.state_codec import DICTIONARY, nul_free, raw_state
from segmentation.state_mapping import changed_parts, packed_bytes, packed_text, stored_part
from streams.core.choice import compiled
from streams.sample.generator import SampleSpec, keyed
from streams.store import history_format, kpi_ops
from streams.store.commit_script import block, write_parts
from streams.store.writes import Known, write_for
from streams.worker.batch import BatchResult, Record, apply_steps, decode


def _done(steps: Generator[None, None, BatchResult]) -> BatchResult:
    while True:
        try:
            next(steps)
        except StopIteration as end:
            return end.value  # type: ignore[no-any-return]


def _best(fn: Callable[[Any], object], items: Sequence[Any]) -> float:
    """µs per item, best of 3."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - started)
    return best / len(items) * 1e6


def by_batch_size(records: list[Record], definitions: Definitions) -> None:
    print("\nthe batch step per event by batch size (decode, apply, KPI, index deltas, writes, commit parts)")
    print(f"  {'batch':>6} {'µs/event':>9} {'writes/event':>13}   (best of 3 passes)")
    for size in (8000, 2000, 500, 150):
        best, writes = float("inf"), 0
        for _ in range(3):
            stored: dict[str, Known] = {}
            spent, writes = 0.0, 0
            for first in range(0, len(records), size):
                batch = records[first : first + size]
                started = time.process_time()
                result = _done(apply_steps(batch, decode(batch), stored, definitions))
                block(write_parts(result.writes))
                spent += time.process_time() - started
                writes += len(result.writes)
                stored.update(result.states)
            best = min(best, spent)
        n = len(records)
        print(f"  {size:>6} {best / n * 1e6:>9.2f} {writes / n:>13.3f}")


def write_parts_of(records: list[Record], definitions: Definitions) -> None:
    """The parts of the writes of one 2,000-event batch three quarters into the year."""
    stored: dict[str, Known] = {}
    start = len(records) * 3 // 4
    for first in range(0, start, 2000):
        batch = records[first : min(first + 2000, start)]
        stored.update(_done(apply_steps(batch, decode(batch), stored, definitions)).states)
    batch = records[start : start + 2000]
    result = _done(apply_steps(batch, decode(batch), stored, definitions))
    pairs = [(stored[c], result.states[c]) for c in result.states if c in stored]
    news = [new[0] for _, new in pairs]
    raws = [raw_state(stored_part(s)) for s in news]
    packed = [packed_bytes(s) for s in news]
    texts = [p.decode("utf-8", "surrogateescape") for p in packed]
    # the history before the batch: its coded text as the worker caches it (`Written.history`), its field
    histories = [_history(old[1]) for old, _ in pairs]
    blobs = [history_format.stored(text) if text else None for text in histories]
    markers = [new[1].get(kpi_ops.MARKER) for _, new in pairs]
    codec = Compressed("segmentation", DICTIONARY)  # the packed state's codec (a context of its own)
    own: dict[str, list[Any]] = {}
    for t in result.transitions:
        own.setdefault(t.customer_id, []).append(t)

    def diff(pair: tuple[Known, Known]) -> object:
        (old, mapping), (new, _) = pair
        return changed_parts(old, new, mapping.packed)  # type: ignore[attr-defined]

    def write(pair: tuple[Known, Known]) -> object:
        (old, mapping), (new, _) = pair
        return write_for(new, mapping, "0:1", old)

    work = [
        (text, blob, own.get(new[0].customer_id, []))
        for text, blob, (_, new) in zip(histories, blobs, pairs, strict=True)
    ]

    def history_as_text(item: tuple[str | None, str | None, list[Any]]) -> object:
        return history_format.appended(item[1], item[2], 64)

    def history_as_bytes(item: tuple[str | None, str | None, list[Any]]) -> object:
        return history_format.packed(history_format.appended_text(item[0], item[2], 64))

    def marker(text: str | None) -> object:
        return kpi_ops.encode(kpi_ops.decode(text))

    def text_of(raw: bytes) -> str:
        return raw.decode("utf-8", "surrogateescape")

    def bytes_of(text: str) -> bytes:
        return text.encode("utf-8", "surrogateescape")

    print(f"\none customer write, µs ({len(pairs)} customers written by one batch of 2,000 events)")
    size, before_zstd = statistics.mean(map(len, packed)), statistics.mean(map(len, raws))
    chars = statistics.mean(len(text or "") for text in histories)
    print(f"  packed state {size:.0f} bytes ({before_zstd:.0f} before zstd), history {chars:.0f} characters")
    rows = [
        ("the readable diff and the packed state (changed_parts)", _best(diff, pairs)),
        ("  of which msgpack (raw_state of stored_part)", _best(lambda s: raw_state(stored_part(s)), news)),
        ("  of which zstd with the dictionary", _best(codec.pack, raws)),
        ("  of which the NUL escape", _best(nul_free, raws)),
        (
            "the packed state as text (packed_text; each write made it before 12d5645)",
            _best(packed_text, news),
        ),
        ("  of which the surrogateescape decode", _best(text_of, packed)),
        ("the commit's encode of that text (before 12d5645)", _best(bytes_of, texts)),
        ("write_for (diff, packing, due time)", _best(write, pairs)),
        (
            "history appended, before a9465a4: decompress the field, code, compress, as text",
            _best(history_as_text, work),
        ),
        ("history appended now: code onto the cached text, compress to bytes", _best(history_as_bytes, work)),
        ("KPI marker decoded and encoded", _best(marker, markers)),
    ]
    for name, us in rows:
        print(f"  {name:<76} {us:>7.2f}")


def _history(mapping: Any) -> str | None:
    """The coded history a cached mapping holds (`Written.history`)."""
    text: str | None = mapping.history
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-customer", type=int, default=120, help="events per customer (the population)")
    args = parser.parse_args()
    spec = SampleSpec(customers=max(1, args.events // args.per_customer), days=365, seed=11)
    records = [
        Record("events", 0, offset, key, value) for offset, (key, value) in enumerate(keyed(spec)) if key
    ]
    print(f"machine: {describe()}; core: {'compiled' if compiled() else 'pure Python'}")
    print(f"sample: {len(records):,} events, {spec.customers:,} customers, 365 days")
    definitions = Definitions.default()
    gc.disable()
    try:
        by_batch_size(records, definitions)
        write_parts_of(records, definitions)
    finally:
        gc.enable()


if __name__ == "__main__":
    main()
