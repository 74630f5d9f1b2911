"""The core's `apply` alone over an order-history file: this checkout against another, compiled with compiled.

    .venv/bin/python benchmarks/bench_apply_ab.py --baseline DIR [--customers 23500] [--rounds 3] [--no-why]

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
        sys.path.insert(0, str(source))
        from benchmarks.replay_child import _baseline_core

        for name in [m for m in sys.modules if m.split(".")[0] in ("segmentation", "streams")]:
            del sys.modules[name]
        _baseline_core(source)
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, help="the other checkout (before)")
    parser.add_argument("--customers", type=int, default=23_500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-why", action="store_true", help="apply with explain=False (a replay's)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
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
                done = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                runs[side].append(done["us"])
                counts[side] = done["transitions"]
                core = "compiled" if done["compiled"] else "pure Python"
                print(f"  round {n + 1} {side:6}: {done['us']:6.2f} CPU-µs per event ({core})")
    before, after = statistics.median(runs["before"]), statistics.median(runs["after"])
    print(describe())
    print(f"apply ({'no why' if args.no_why else 'with why'}), medians of {args.rounds} alternate rounds:")
    print(f"  before {before:.2f}  after {after:.2f} CPU-µs per event  after/before {after / before:.2f}x")
    same = "the same" if counts["before"] == counts["after"] else "DIFFERENT"
    print(f"  transitions before {counts['before']:,}, after {counts['after']:,}: {same}")


if __name__ == "__main__":
    main()
