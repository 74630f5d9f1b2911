"""What one customer write costs in the worker's pure batch step, piece by piece, on a live engagement stream.

    .venv/bin/python benchmarks/bench_customer_write.py [--events 100000] [--per-customer 120] [--days 365]
        [--baseline DIR] [--rounds 3]

Why: on `bench_worker.py`'s stream the worker's CPU per event is ~12 µs for the events themselves plus
~20 µs for every customer write (one per customer per batch), so the batch size and the population move it
from ~14 to ~28 µs (first table). The second table splits a write of a year-old customer (packed state ~700
bytes, ~580 of them its 64-id duplicate window, written uncompressed; history ~30 entries) into its parts,
with the text conversions the write path used to make (the packed state as `surrogateescape` text, decoded
per write and encoded again for the commit) beside the bytes it makes now.

No Kafka, no Redis: the engagement sample (`segstream sample`'s default profile) in memory, one partition,
the cyclic GC off; best of 3 per figure. `--baseline DIR` runs the batch-size table with another checkout's
code too (its own compiled core when `python -m streams.core.build` was run there), in alternate child
processes, medians side by side. Machine noise moves these by ±10 %: compare within one run.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe

if TYPE_CHECKING:  # imported where used: a `--source` child must load its checkout's code (and compiled core)
    from segmentation import Definitions
    from streams.store.writes import Known
    from streams.worker.batch import Record


def _best(fn: Callable[[Any], object], items: Sequence[Any]) -> float:
    """µs per item, best of 3."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - started)
    return best / len(items) * 1e6


SIZES = (8000, 2000, 500, 150)


def batch_step(source: Path | None, events: int, per_customer: int, days: int = 365) -> None:
    """Child: the batch step per event at each of `SIZES`, best of 3 passes, with the code of `source` (a
    checkout, its own compiled core when built there; None: this one); prints JSON."""
    if source is not None:
        from benchmarks.replay_child import use_checkout  # first: importing it puts this checkout on the path

        use_checkout(source)
    from segmentation import Definitions as Defs
    from streams.sample.generator import SampleSpec as Spec
    from streams.sample.generator import keyed as sample
    from streams.store import commit_script, history_format
    from streams.worker import batch as step

    def encoded(parts: list[Any]) -> object:  # the commit's one argument, as each checkout makes it
        joined = getattr(commit_script, "pack", None) or getattr(commit_script, "block", None)
        if joined is not None:
            return joined(parts)
        return "\x00".join(parts).encode("utf-8", "surrogateescape")  # before 12d5645

    spec = Spec(customers=max(1, events // per_customer), days=days, seed=11)
    records = [step.Record("events", 0, n, key, value) for n, (key, value) in enumerate(sample(spec)) if key]
    definitions = Defs.default()
    out: dict[str, list[float]] = {}
    gc.disable()
    for size in SIZES:
        best, writes = float("inf"), 0
        for _ in range(3):
            stored: dict[str, Any] = {}
            spent, writes = 0.0, 0
            for first in range(0, len(records), size):
                part = records[first : first + size]
                started = time.process_time()
                result = step.apply_batch(part, step.decode(part), stored, definitions)
                encoded(commit_script.write_parts(result.writes))
                spent += time.process_time() - started
                writes += len(result.writes)
                stored.update(result.states)
            best = min(best, spent)
        out[str(size)] = [best / len(records) * 1e6, writes / len(records)]
    out["at_cap"] = [at_cap(records, definitions), 0.0]
    texts = [getattr(known[1], "history", None) for known in stored.values()]
    capped = sum(1 for t in texts if t and history_format.is_trimmed(history_format.stored(t)))
    out["capped"] = [float(capped), float(len(stored))]
    print(json.dumps(out))


def at_cap(records: list[Any], definitions: Any) -> float:
    """µs per history append once the history holds its cap (64): what every write of a customer active for
    years costs. Each customer of one 2,000-event batch, its year's transitions shifted back one and two
    years before them (so 64 kept), gets that batch's own transitions appended, as the worker does."""
    from datetime import timedelta

    from segmentation.transition import Transition
    from streams.store import history_format
    from streams.worker import batch as step

    everything = step.apply_batch(records, step.decode(records), {}, definitions).transitions
    start = len(records) * 3 // 4
    part = records[start : start + 2000]
    stored = step.apply_batch(records[:start], step.decode(records[:start]), {}, definitions).states
    own: dict[str, list[Any]] = {}
    for t in step.apply_batch(part, step.decode(part), stored, definitions).transitions:
        own.setdefault(t.customer_id, []).append(t)
    year: dict[str, list[Any]] = {}
    for t in everything:
        year.setdefault(t.customer_id, []).append(t)
    work = []
    for cid, moves in own.items():
        older = [
            Transition.create(
                cid,
                t.grid,
                t.from_segment,
                t.to_segment,
                t.effective_at - timedelta(days=365 * back),
                f"{t.cause}-{back}",
                t.definitions_version,
                {},
            )
            for back in (2, 1)
            for t in year[cid]
        ]
        text = history_format.appended_text(None, older, 64)
        if history_format.is_trimmed(history_format.stored(text)):  # at the cap: what is measured
            work.append((text, moves))
    return _best(lambda w: history_format.packed(history_format.appended_text(w[0], w[1], 64)), work)


def by_batch_size(args: argparse.Namespace) -> None:
    """The child per checkout, alternating over `--rounds`; medians side by side."""
    sides = [("after", None)] if args.baseline is None else [("before", args.baseline), ("after", None)]
    runs: dict[str, list[dict[str, list[float]]]] = {name: [] for name, _ in sides}
    for _ in range(args.rounds):
        for name, source in sides:
            argv = [sys.executable, __file__, "--child", "--events", str(args.events)]
            argv += ["--per-customer", str(args.per_customer), "--days", str(args.days)] + (
                [] if source is None else ["--source", source]
            )
            done = subprocess.run(argv, check=True, capture_output=True, text=True)
            runs[name].append(json.loads(done.stdout.splitlines()[-1]))
    print(
        "\nthe batch step per event by batch size, CPU-µs (decode, apply, KPI, index deltas, writes, commit"
    )
    print(f"argument; best of 3 passes, medians of {args.rounds} rounds)")
    print(f"  {'batch':>6} {'writes/event':>13}" + "".join(f" {name:>9}" for name, _ in sides))
    for size in SIZES:
        key = str(size)
        writes = runs["after"][0][key][1]
        medians = [statistics.median(r[key][0] for r in runs[name]) for name, _ in sides]
        ratio = f"  {medians[1] / medians[0]:.2f}x" if len(medians) == 2 else ""
        print(f"  {size:>6} {writes:>13.3f}" + "".join(f" {m:>9.2f}" for m in medians) + ratio)
    capped, customers = runs["after"][0]["capped"]
    print(f"  (customers whose history reached its cap by the end: {capped:,.0f} of {customers:,.0f})")
    medians = [statistics.median(r["at_cap"][0] for r in runs[name]) for name, _ in sides]
    ratio = f"  {medians[1] / medians[0]:.2f}x" if len(medians) == 2 else ""
    print("a history append at its cap (64 entries kept; a customer active for years), µs per write:")
    print(f"  {'':>6} {'':>13}" + "".join(f" {m:>9.2f}" for m in medians) + ratio)


def write_parts_of(records: list[Record], definitions: Definitions) -> None:
    """The parts of the writes of one 2,000-event batch three quarters into the year."""
    from segmentation.compressed import Compressed
    from segmentation.state_codec import DICTIONARY, nul_free, raw_state, with_nul
    from segmentation.state_mapping import changed_parts, packed_bytes, packed_text, stored_part
    from streams.store import history_format, kpi_ops
    from streams.store.stored_state import loaded
    from streams.store.writes import write_for
    from streams.worker.batch import apply_batch, decode

    stored: dict[str, Known] = {}
    start = len(records) * 3 // 4
    for first in range(0, start, 2000):
        batch = records[first : min(first + 2000, start)]
        stored.update(apply_batch(batch, decode(batch), stored, definitions).states)
    batch = records[start : start + 2000]
    result = apply_batch(batch, decode(batch), stored, definitions)
    pairs = [(stored[c], result.states[c]) for c in result.states if c in stored]
    news = [new[0] for _, new in pairs]
    raws = [raw_state(stored_part(s)) for s in news]
    packed = [packed_bytes(s) for s in news]
    unescaped = [with_nul(p[1:]) for p in packed]  # what the write's escape is given
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

    # each customer's hash as Redis holds it before the batch, with the state the batch made for it
    hashes = [({k: v for k, v in old[1].row().items() if _in_hash(k, v)}, new[0]) for old, new in pairs]  # type: ignore[attr-defined]

    def read_back(item: tuple[dict[str, str], Any]) -> object:
        state, mapping = loaded(item[0], "bench")
        return write_for(item[1], mapping, "0:1", state)

    def text_of(raw: bytes) -> str:
        return raw.decode("utf-8", "surrogateescape")

    def bytes_of(text: str) -> bytes:
        return text.encode("utf-8", "surrogateescape")

    print(f"\none customer write, µs ({len(pairs)} customers written by one batch of 2,000 events)")
    size, before_zstd = statistics.mean(map(len, packed)), statistics.mean(map(len, raws))
    chars = statistics.mean(len(text or "") for text in histories)
    print(f"  packed state {size:.0f} bytes ({before_zstd:.0f} msgpack to zstd), history {chars:.0f} chars")
    rows = [
        ("the readable diff and the packed state (changed_parts)", _best(diff, pairs)),
        ("  of which msgpack (raw_state of stored_part)", _best(lambda s: raw_state(stored_part(s)), news)),
        ("  of which zstd with the dictionary", _best(codec.pack, raws)),
        ("  of which the NUL escape (of the window and the compressed bytes)", _best(nul_free, unescaped)),
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
        (
            "a customer read back from its hash (a cold cache): state, view, write_for",
            _best(read_back, hashes),
        ),
        ("  of which the packed state's unescape (with_nul)", _best(with_nul, [p[1:] for p in packed])),
    ]
    for name, us in rows:
        print(f"  {name:<76} {us:>7.2f}")


def _in_hash(key: str, text: str) -> bool:
    """Whether a field of a cached mapping is in the customer's hash (empty texts are not stored)."""
    from segmentation.state_mapping import STATE, is_stored
    from streams.store import history_format

    return key.startswith("_") or key in (STATE, history_format.FIELD) or is_stored(key, text)


def _history(mapping: Any) -> str | None:
    """The coded history a cached mapping holds (`Written.history`)."""
    text: str | None = mapping.history
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-customer", type=int, default=120, help="events per customer (the population)")
    parser.add_argument(
        "--days", type=int, default=365, help="the sample's span (years of it fill histories)"
    )
    parser.add_argument("--baseline", help="another checkout (git archive <rev> | tar -x -C DIR): before")
    parser.add_argument("--rounds", type=int, default=3, help="alternate runs of the batch-size table")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        source = None if args.source is None else Path(args.source).resolve()
        batch_step(source, args.events, args.per_customer, args.days)
        return
    from segmentation import Definitions
    from streams.core.choice import compiled
    from streams.sample.generator import SampleSpec, keyed
    from streams.worker.batch import Record

    spec = SampleSpec(customers=max(1, args.events // args.per_customer), days=args.days, seed=11)
    records = [
        Record("events", 0, offset, key, value) for offset, (key, value) in enumerate(keyed(spec)) if key
    ]
    print(f"machine: {describe()}; core: {'compiled' if compiled() else 'pure Python'}")
    print(f"sample: {len(records):,} events, {spec.customers:,} customers, {spec.days} days")
    by_batch_size(args)
    gc.disable()
    try:
        write_parts_of(records, Definitions.default())
    finally:
        gc.enable()


if __name__ == "__main__":
    main()
