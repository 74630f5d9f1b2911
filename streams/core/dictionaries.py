"""Train the zstd dictionaries of the packed state and of the coded history: once per format, never at set-up.

    .venv/bin/python -m streams.core.dictionaries [--write state|history]

Each dictionary is frozen with the format byte of the values written with it (`segmentation.compressed`):
`segmentation/packed_state_5.zdict` (state format 5, `segmentation.state_codec`) and
`streams/store/history.zdict` (history `COMPRESSED`, `streams.store.history_format`). A value written with one
must decompress with it forever, so by default this only reports what a fresh training would give against the
shipped ones; `--write KIND` replaces one, for a new format only (a new format byte). Samples come from the
sample generator's two profiles with seeds no benchmark or test uses (the engagement-heavy default, 3,000
customers over a year, and the order-history import, 6,000 customers over 18 months): every event is applied
by the core with the default definitions, and a customer's stored state (`state_mapping.stored_part`, what
`state` packs) and coded history are taken after one event in eight and at the end (after the time-driven
changes due by then), so new, middle-aged and old customers all count. What a dictionary learns is the values'
layout and the texts the default definitions and the generator share with real data (channels, currency,
timestamp headers, zeros, grid and segment codes); real ids and category names compress less than the
generator's.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import zstandard

from segmentation import CustomerState, Definitions, InvalidEvent, Outcome, advance, apply, parse_event
from segmentation.compressed import LEVEL, parameters
from segmentation.state_codec import DICTIONARY, raw_state
from segmentation.state_mapping import stored_part
from streams.sample.generator import SampleSpec, generate
from streams.store.history_format import DICTIONARY as HISTORY
from streams.store.history_format import appended_text

__all__ = ["SIZE", "main", "samples", "train"]

SIZE = 8192  # bytes: 4 KB and 64 KB compressed a ~300-byte state within 2 % of it
HISTORY_CAP = 64  # transitions kept per customer, the store's default (streams/store/port.py)
_SPECS = (
    SampleSpec(customers=3000, days=365, seed=9001),
    SampleSpec(customers=6000, days=548, seed=9002, profile="order-history"),
)
_ROOT = Path(__file__).resolve().parents[2]
_OUT = {"state": _ROOT / "segmentation" / DICTIONARY, "history": _ROOT / "streams" / "store" / HISTORY}


class Samples(NamedTuple):
    """What each dictionary compresses: raw states (msgpack) and coded histories (text after VERSION)."""

    state: list[bytes]
    history: list[bytes]


def samples(spec: SampleSpec, every: int = 8, seed: int = 0) -> Samples:
    """`spec`'s customers after ~1 event in `every`, and each one at the end."""
    definitions = Definitions.default()
    rng = random.Random(seed)
    states: dict[str, CustomerState] = {}
    histories: dict[str, str | None] = {}
    out = Samples([], [])

    def take(cid: str) -> None:
        out.state.append(raw_state(stored_part(states[cid])))
        text = histories.get(cid)
        if text:
            out.history.append(text[1:].encode("utf-8"))

    def note(cid: str, outcome: Outcome) -> None:
        states[cid] = outcome.state
        if outcome.transitions:
            histories[cid] = appended_text(histories.get(cid), outcome.transitions, HISTORY_CAP)

    for line in generate(spec):
        try:
            event = parse_event(line)
        except InvalidEvent:
            continue
        cid = event.customer_id
        note(cid, apply(states.get(cid) or CustomerState.new(cid), event, definitions))
        if rng.randrange(every) == 0:
            take(cid)
    end = spec.start + timedelta(days=spec.days)
    for cid in list(states):
        note(cid, advance(states[cid], end, definitions))
        take(cid)
    return out


def train(data: list[bytes], size: int = SIZE) -> bytes:
    """A full zstd dictionary (header, entropy tables, content) of `size` bytes for `data`."""
    chunks: list[bytes | bytearray | memoryview] = list(data)
    return zstandard.train_dictionary(size, chunks, level=LEVEL).as_bytes()


def _sizes(dictionary: bytes, data: list[bytes]) -> float:
    compressor = zstandard.ZstdCompressor(
        dict_data=zstandard.ZstdCompressionDict(dictionary), compression_params=parameters()
    )
    return statistics.mean(len(compressor.compress(raw)) for raw in data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", choices=tuple(_OUT), help="replace that shipped one (a new format)")
    args = parser.parse_args()
    parts = [samples(spec) for spec in _SPECS]
    for kind, path in _OUT.items():
        data = [raw for part in parts for raw in getattr(part, kind)]
        random.Random(1).shuffle(data)
        held_out, training = data[:2000], data[2000:]
        fresh = train(training)
        mean = statistics.mean(map(len, held_out))
        print(
            f"{kind}: {len(training):,} samples; held out: {mean:.0f} -> {_sizes(fresh, held_out):.0f} bytes"
        )
        if args.write != kind:
            shipped = path.read_bytes()
            digest = hashlib.sha256(shipped).hexdigest()[:16]
            print(
                f"  shipped {path.name} (sha256 {digest}): held out -> {_sizes(shipped, held_out):.0f} bytes"
            )
            continue
        path.write_bytes(fresh)
        print(f"  wrote {path} ({len(fresh):,} bytes, sha256 {hashlib.sha256(fresh).hexdigest()})")


if __name__ == "__main__":
    main()
