"""Differential check of the two cores: the same generated event log through the pure-Python and the
mypyc-compiled `segmentation`, each in its own interpreter, must give identical states, transitions (ids and
`why` included), dead letters and time-driven sweeps. `make test` runs it over 1M events.

    .venv/bin/python -m tests.core_differential [--events 1000000] [--customers 5000] [--seed 7]

Each run drives the worker's own pure steps (`decode`, `apply_batch`, `advance_all`) over the `sample`
generator's log (malformed lines and unkeyed records included), batch by batch as a worker does, sweeping due
customers to each batch's watermark; it prints a digest of everything they produced, plus a digest every
`--chunk` events so a difference is located. Exit 1 when the digests differ or no compiled core is built.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import orjson

from segmentation import Definitions
from streams.core import choice as core_choice
from streams.sample.generator import SampleSpec, keyed
from streams.store.writes import Known
from streams.worker.batch import BatchResult, Record, advance_all, apply_batch, decode

__all__ = ["compare", "main", "run"]

_BATCH = 2_000


def _ordered(value: object) -> object:
    return sorted(value) if isinstance(value, set | frozenset) else value


class _Digest:
    """A running SHA-256 over everything the core produced, with counts and a snapshot every `chunk`."""

    def __init__(self, chunk: int) -> None:
        self.hash = hashlib.sha256()
        self.chunk = chunk
        self.chunks: list[str] = []
        self.counts = {"events": 0, "transitions": 0, "dead_letters": 0, "writes": 0, "swept": 0}

    def absorb(self, result: BatchResult) -> None:
        add = self.hash.update
        for w in result.writes:
            add(
                repr(
                    (
                        w.customer_id,
                        sorted(w.set_fields.items()),
                        sorted(w.binary.items()),
                        list(w.removed_fields),
                        w.delete,
                    )
                ).encode()
            )
            add(repr(w.due_us).encode())
        for t in result.transitions:
            add(orjson.dumps(t.to_dict(), option=orjson.OPT_SORT_KEYS))
        for d in result.dead_letters:
            add(repr((d.offset, d.stage, d.key, d.headers())).encode())
        for cid, (_, mapping) in sorted(result.states.items()):  # whole states: at the end (`run`)
            # repr, not JSON: the packed `state` is binary carried as surrogate escapes (storage format 2)
            binary = getattr(mapping, "packed", None), getattr(mapping, "history", None)  # a `Written`'s
            add(cid.encode() + b"\0" + repr((sorted(mapping.items()), binary)).encode())
        index = result.index  # its sets (`history_reset`) sorted: their order varies with the hash seed
        add(repr({f.name: _ordered(getattr(index, f.name)) for f in fields(index)}).encode())
        self.counts["transitions"] += len(result.transitions)
        self.counts["dead_letters"] += len(result.dead_letters)
        self.counts["writes"] += len(result.writes)

    def passed(self, events: int) -> None:
        before = self.counts["events"] // self.chunk
        self.counts["events"] += events
        if self.counts["events"] // self.chunk > before:
            self.chunks.append(self.hash.hexdigest()[:16])


def run(events: int, customers: int, seed: int, chunk: int) -> dict[str, Any]:
    """This interpreter's core over the generated log: digests and counts."""
    started = time.process_time()
    spec = SampleSpec(
        customers=customers, days=730, seed=seed, malformed_share=0.02, erasure_share=0.01, limit=events
    )
    definitions = Definitions.default()
    stored: dict[str, Known] = {}
    digest = _Digest(chunk)
    records: list[Record] = []

    def flush() -> None:
        result = apply_batch(records, decode(records), stored, definitions)
        digest.absorb(result)
        stored.update(result.states)
        if result.watermark_us is not None:  # time passes: sweep who is due by the batch's watermark
            until = datetime.fromtimestamp(result.watermark_us / 1e6, UTC)
            due = {
                c: k for c, k in stored.items() if k[0].next_due_at is not None and k[0].next_due_at <= until
            }
            swept = advance_all(due, until, definitions)
            digest.absorb(swept)
            digest.counts["swept"] += len(due)
            stored.update(swept.states)
        digest.passed(len(records))
        records.clear()

    for offset, (key, line) in enumerate(keyed(spec)):
        records.append(Record("events", 0, offset, key, line))
        if len(records) == _BATCH:
            flush()
    if records:
        flush()
    for cid in sorted(stored):  # the final state of every customer, as the core holds it
        digest.hash.update(cid.encode() + repr(stored[cid][0]).encode())
    return {
        "core": core_choice.status(),
        "compiled": core_choice.compiled(),
        "digest": digest.hash.hexdigest(),
        "chunks": digest.chunks,
        "customers": len(stored),
        "cpu_s": round(time.process_time() - started, 1),
        **digest.counts,
    }


def _child(core: str, args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop(core_choice.PURE_ENV, None)
    if core == "pure":
        env[core_choice.PURE_ENV] = "1"
    cmd = [sys.executable, "-m", "tests.core_differential", "--child"]
    cmd += ["--events", str(args.events), "--customers", str(args.customers), "--seed", str(args.seed)]
    cmd += ["--chunk", str(args.chunk)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {core} run failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def compare(pure: dict[str, Any], compiled: dict[str, Any], chunk: int) -> list[str]:
    """The problems, empty when both cores agree and each run used the core it was meant to."""
    problems = []
    if pure["compiled"]:
        problems.append(f"the pure run used the compiled core ({pure['core']})")
    if not compiled["compiled"]:
        problems.append(f"no compiled core to compare: {compiled['core']}")
    if pure["digest"] != compiled["digest"]:
        first = next(
            (i for i, (a, b) in enumerate(zip(pure["chunks"], compiled["chunks"], strict=False)) if a != b),
            None,
        )
        where = (
            "after the last chunk"
            if first is None
            else f"within events {first * chunk}-{(first + 1) * chunk}"
        )
        problems.append(f"outputs differ {where}")
    for name in ("events", "transitions", "dead_letters", "writes", "swept", "customers"):
        if pure[name] != compiled[name]:
            problems.append(f"{name}: pure {pure[name]} vs compiled {compiled[name]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.core_differential", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run(args.events, args.customers, args.seed, args.chunk)))
        return 0
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # one interpreter per core, side by side
        pure_run, compiled_run = pool.submit(_child, "pure", args), pool.submit(_child, "compiled", args)
        pure, compiled = pure_run.result(), compiled_run.result()
    problems = compare(pure, compiled, args.chunk)
    summary = ", ".join(
        f"{n} {pure[n]:,}" for n in ("events", "transitions", "dead_letters", "writes", "swept")
    )
    print(f"core differential: {summary}; {len(pure['chunks'])} chunk digests")
    print(f"  pure     {pure['digest'][:16]}  {pure['cpu_s']} CPU-s  {pure['core']}")
    print(f"  compiled {compiled['digest'][:16]}  {compiled['cpu_s']} CPU-s  {compiled['core']}")
    print(f"  {time.monotonic() - started:.0f} s wall: " + ("; ".join(problems) or "identical"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
