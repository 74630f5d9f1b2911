"""The core's `apply` alone (or the worker's whole pure batch step) over an order-history file: this checkout
against another, compiled with compiled.

    .venv/bin/python benchmarks/bench_apply_ab.py --baseline DIR [--customers 23500] [--rounds 3] [--no-why]
        [--stage apply|batch] [--batch 20000]

`--stage batch` measures what a replay does between its reads and its Redis commits, without either: the
records of one partition in batches of `--batch` (the replay's default 20,000) through `decode`, `apply_batch`
(the core, KPI counting, state mapping diff, history coding, index deltas), the sweep of who is due at the
batch's watermark (`advance_all`) and the commit's packed customer writes (`write_parts`), the cyclic GC off
as in a replay (`--no-why`: as a replay, which publishes nothing; without it, as a worker that publishes).

Why beside `bench_replay.py`: a replay's CPU per event is ~4x `apply`'s and moves ±10 % from round to round
on a shared 2-core box, so a change of a few µs inside the core is lost in it. Here each round is a fresh
interpreter per checkout (`--baseline DIR`: `git archive <commit> | tar -x -C DIR`, its own compiled core
when `python -m streams.core.build` was run there), which parses the file first, then applies every event
to its customer's state (no I/O, no store, `explain` as `--no-why` says) three times and keeps the least
process CPU time; the checkouts alternate, and the medians of the rounds are printed side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(source: Path | None, path: Path, explain: bool) -> None:
    """One measurement in this process with the code of `source` (None: this checkout); prints JSON."""
    if source is not None:
        from benchmarks.replay_child import use_checkout

        use_checkout(source)
    from segmentation import CustomerState, Definitions, apply, parse_event
    from segmentation import transition as module

    definitions = Definitions.default()
    events = []
    for line in path.read_bytes().splitlines():
        try:
            events.append(parse_event(line))
        except Exception:  # the generator's malformed lines are not what is measured
            continue
    best, transitions = float("inf"), 0
    for _ in range(3):
        states: dict[str, CustomerState] = {}
        transitions = 0
        started = time.process_time()
        for event in events:
            state = states.get(event.customer_id) or CustomerState.new(event.customer_id)
            try:
                outcome = apply(state, event, definitions, explain=explain)
            except ValueError:  # refused events (the worker dead-letters them)
                continue
            states[event.customer_id] = outcome.state
            transitions += len(outcome.transitions)
        best = min(best, time.process_time() - started)
    compiled = not str(module.__file__).endswith(".py")
    out = {"us": best / len(events) * 1e6, "transitions": transitions, "compiled": compiled}
    print(json.dumps({**out, "module": str(module.__file__)}))


def child_batch(source: Path | None, path: Path, size: int, explain: bool) -> None:
    """`--stage batch`: the worker's pure steps over the file, batch by batch; prints JSON."""
    if source is not None:
        from benchmarks.replay_child import use_checkout

        use_checkout(source)
    import gc
    from collections.abc import Generator
    from datetime import UTC, datetime

    from segmentation import Definitions
    from streams.store import writes as module
    from streams.store.commit_script import write_parts
    from streams.store.writes import Known
    from streams.worker.batch import BatchResult, Record, advance_all, apply_steps, decode

    def done(steps: Generator[None, None, BatchResult]) -> BatchResult:
        while True:
            try:
                next(steps)
            except StopIteration as end:
                return end.value  # type: ignore[no-any-return]

    definitions = Definitions.default()
    records = [
        Record("events", 0, offset, line.split(b'"customer_id":"', 1)[1].split(b'"', 1)[0], line)
        for offset, line in enumerate(path.read_bytes().splitlines())
        if b'"customer_id":"' in line
    ]
    best, transitions = float("inf"), 0
    for _ in range(2):
        stored: dict[str, Known] = {}
        dead = 0
        transitions = 0
        gc.collect()
        gc.disable()
        started = time.process_time()
        for first in range(0, len(records), size):
            batch = records[first : first + size]
            result = done(apply_steps(batch, decode(batch), stored, definitions, explain=explain))
            dead += len(result.dead_letters)
            write_parts(result.writes)
            transitions += len(result.transitions)
            stored.update(result.states)
            if result.watermark_us is not None:
                until = datetime.fromtimestamp(result.watermark_us / 1e6, UTC)
                due = {
                    c: k
                    for c, k in stored.items()
                    if k[0].next_due_at is not None and k[0].next_due_at <= until
                }
                swept = advance_all(due, until, definitions, explain=explain)
                write_parts(swept.writes)
                transitions += len(swept.transitions)
                stored.update(swept.states)
        best = min(best, time.process_time() - started)
        gc.enable()
    compiled = not str(module.__file__).endswith(".py")
    out = {"us": best / len(records) * 1e6, "transitions": transitions, "compiled": compiled, "dead": dead}
    print(json.dumps({**out, "module": str(module.__file__)}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, help="the other checkout (before)")
    parser.add_argument("--customers", type=int, default=23_500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-why", action="store_true", help="apply with explain=False (a replay's)")
    parser.add_argument("--stage", choices=("apply", "batch"), default="apply")
    parser.add_argument("--batch", type=int, default=20_000, help="--stage batch: events per batch")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child and args.stage == "batch":
        child_batch(args.source, args.child, args.batch, not args.no_why)
        return
    if args.child:
        child(args.source, args.child, not args.no_why)
        return
    if args.baseline is None:
        parser.error("--baseline DIR is required")
    from benchmarks.machine import describe
    from streams.sample import generator as sample

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "orders.jsonl"
        spec = sample.SampleSpec(customers=args.customers, days=548, seed=11, profile="order-history")
        sample.write_jsonl(spec, path)  # bench_replay.py --profile order-history's file
        runs: dict[str, list[float]] = {"before": [], "after": []}
        counts: dict[str, int] = {}
        for n in range(args.rounds):
            order = ("before", "after") if n % 2 == 0 else ("after", "before")
            for side in order:
                cmd = [sys.executable, __file__, "--child", str(path)]
                cmd += ["--source", str(args.baseline.resolve())] if side == "before" else []
                cmd += ["--no-why"] if args.no_why else []
                cmd += ["--stage", args.stage, "--batch", str(args.batch)]
                done = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                runs[side].append(done["us"])
                counts[side] = done["transitions"]
                core = "compiled" if done["compiled"] else "pure Python"
                print(f"  round {n + 1} {side:6}: {done['us']:6.2f} CPU-µs per event ({core})")
    before, after = statistics.median(runs["before"]), statistics.median(runs["after"])
    print(describe())
    what = "the batch step" if args.stage == "batch" else f"apply ({'no why' if args.no_why else 'with why'})"
    print(f"{what}, medians of {args.rounds} alternate rounds:")
    print(f"  before {before:.2f}  after {after:.2f} CPU-µs per event  after/before {after / before:.2f}x")
    same = "the same" if counts["before"] == counts["after"] else "DIFFERENT"
    print(f"  transitions before {counts['before']:,}, after {counts['after']:,}: {same}")


if __name__ == "__main__":
    main()
