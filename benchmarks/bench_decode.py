"""Decode + validate cost per event: msgspec (`parse_event`) against the pydantic path it replaced.

A script, not a test: `.venv/bin/python benchmarks/bench_decode.py [--events N] [--rounds N]`.
Events are the JSON lines of `bench_worker.py`'s topic (the `sample` generator: engagement-heavy, ~120 events
per customer, 0.2 % malformed), and the purchases with items among them. Lines per set, in µs per event
(CPU time, medians over interleaved rounds, cyclic GC paused as in a worker that drops each batch):
- `pydantic path`: `validate_event`, what `parse_event` did before msgspec (orjson + pydantic validation);
- `parse_event`: msgspec first (`event_wire.decode_event`), pydantic only for what msgspec does not accept;
- `msgspec + model_construct`: the same with pydantic's `model_construct` building the models instead of
  `event_wire`'s direct construction (the alternative the choice was measured against);
- `msgspec Structs alone`: decoding into the Structs without amounts, times or models (the floor).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.machine import describe
from segmentation import event_wire
from segmentation.events import InvalidEvent, parse_event, validate_event
from streams.sample import generator as sample


def _construct(cls: Any, values: dict[str, Any], fields_set: set[str]) -> Any:
    return cls.model_construct(fields_set, **values)


def run(parse: Callable[[bytes], object], lines: list[bytes]) -> int:
    for line in lines:
        with contextlib.suppress(InvalidEvent):
            parse(line)
    return len(lines)


def per_event_us(rounds: int, variants: list[Callable[[], int]]) -> list[float]:
    """Median CPU-µs per event of each of `variants` (each returns its number of events), GC paused.

    Rounds interleave the variants, and CPU time (not wall time) is counted, so that the other load of a
    shared machine weighs on every variant alike."""
    times: list[list[float]] = [[] for _ in variants]
    for _ in range(rounds):
        for index, work in enumerate(variants):
            gc.disable()
            try:
                began = time.process_time()
                count = work()
                times[index].append((time.process_time() - began) / count * 1e6)
            finally:
                gc.enable()
    return [statistics.median(each) for each in times]


def constructed(line: bytes) -> object:
    """parse_event with pydantic's model_construct in event_wire (for the comparison line only)."""
    direct = event_wire._model
    event_wire._model = _construct
    try:
        return parse_event(line)
    finally:
        event_wire._model = direct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    spec = sample.SampleSpec(
        customers=max(1, args.events // 120), days=365, seed=11, malformed_share=0.002, limit=args.events
    )
    lines = list(sample.generate(spec))
    purchases = [line for line in lines if b'"purchase"' in line and b'"items":[{' in line]
    for line in lines[:2000]:  # the two paths agree here (tests/unit/test_events_wire.py fuzzes it)
        try:
            same = parse_event(line) == validate_event(line)
        except InvalidEvent:
            same = True
        assert same, line
    print(f"machine: {describe()}")
    print(f"{'events':34} {'pydantic':>9} {'parse_event':>12} {'ratio':>6} {'+construct':>11} {'Structs':>8}")
    sets = {f"sample mix ({len(lines)})": lines, f"purchases with items ({len(purchases)})": purchases}
    for label, chosen in sets.items():
        paths = (validate_event, parse_event, constructed, _structs)
        before, after, construct, floor = per_event_us(args.rounds, [partial(run, p, chosen) for p in paths])
        print(f"{label:34} {before:9.2f} {after:12.2f} {before / after:5.2f}x {construct:11.2f} {floor:8.2f}")
    print("(CPU-µs per event, medians of interleaved rounds; ratio: pydantic path / parse_event)")


def _structs(line: bytes) -> object:
    try:
        return event_wire._DECODER.decode(line)
    except Exception:
        return None


if __name__ == "__main__":
    main()
