"""File replay: events/s, CPU per event and per transition, Redis bytes per customer, peak RSS.

    .venv/bin/python benchmarks/bench_replay.py [--events 1000000] [--partitions 4] [--batch 20000]
        [--processes 1] [--compare-processes 2] [--cprofile]
    .venv/bin/python benchmarks/bench_replay.py --profile order-history [--customers 23500]
        [--baseline DIR [--rounds 3]]

Profiles (the sample generator's, streams/sample/): `default` writes a sample JSONL.gz of --events lines
(customers = events / 120 unless --customers, 365 days, 0.2 % malformed) and replays it, and its first
quarter (peak RSS should follow the population, not the file's length); `order-history` writes the import
shape (--customers customers, 23,500 by default: ~69k orders over 18 months, most customers new, ~3 orders
each, long-tailed) and replays it once. Each replay runs in a fresh process into a fresh namespace of a
throw-away prefix (peak RSS = that process's ru_maxrss). Uses SEGSTREAM_REDIS_URL when set, else the local
stack.

Each replay prints its CPU budget: CPU-us per event and per transition of the replay process and of
redis-server (read from /proc around the replay call only, so file generation, start-up and the memory
measurement are excluded), transitions per event, and the Redis memory of the namespace per customer:
MEMORY USAGE of every key under the run's prefix, split into per-customer keys and partition aggregates
(benchmarks/footprint.py: no key layout assumed), with the used_memory delta as a cross-check.
(redis-server's CPU and used_memory include whatever else uses that server meanwhile.)

`--baseline DIR` replays the same file with the code of another checkout (e.g. `git -C /work/main archive
0c6137a | tar -x -C DIR`) in alternate rounds with this one, --rounds each (which one goes first alternates
too: use an even --rounds), and prints the medians side by side with their ratio (after/before).
With --processes N the replay figure is the parent plus its N children
(RUSAGE_CHILDREN) and peak RSS is the largest child's. --compare-processes N replays the full file split
across N processes, interleaved with one process over --rounds rounds. --cprofile adds a cProfile run of
the quarter (or, for order-history, the whole) file (top entries by own time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.before_after import load_average, side_by_side
from benchmarks.machine import describe
from benchmarks.replay_child import budget, footprint_of, num, redis_url, run_child

ORDER_HISTORY_CUSTOMERS = 23_500


def compare(path: Path, args: argparse.Namespace, url: str) -> None:
    """One process vs --compare-processes N on the full file, interleaved rounds, medians and ratio."""
    n = args.compare_processes
    rows: dict[int, list[dict[str, object]]] = {1: [], n: []}
    for _ in range(args.rounds):
        for processes in (1, n):
            rows[processes].append(run_child(path, args, url, processes=processes))
    print(f"\nfull file, 1 vs {n} processes, medians of {args.rounds} interleaved rounds:")
    medians = {}
    for processes, results in rows.items():
        rate = statistics.median(num(r["rate"]) for r in results)
        per_event = {
            name: statistics.median(
                float(str(r[f"cpu_{name}"])) * 1e6 / float(str(r["events"])) for r in results
            )
            for name in ("replay", "redis")
            if all(f"cpu_{name}" in r for r in results)
        }
        rss = max(num(r["max_rss_mib"]) for r in results)
        medians[processes] = rate
        cpu = ", ".join(f"{name} {us:.1f}" for name, us in per_event.items())
        print(
            f"  {processes} process(es): {rate:>9,.0f} events/s  CPU-us/event {cpu}  peak RSS {rss:.0f} MiB"
        )
    print(f"  ratio {n}/1: {medians[n] / medians[1]:.2f}x")


def metrics(result: dict[str, object]) -> dict[str, float]:
    """The figures of one replay compared across variants: rate, CPU per event and per transition, memory."""
    events, transitions = num(result["events"]), num(result["transitions"])
    spent = {name: num(result[f"cpu_{name}"]) for name in ("replay", "redis") if f"cpu_{name}" in result}
    out = {"events/s": num(result["rate"]), "transitions/event": transitions / max(1.0, events)}
    for unit, count in (("event", events), ("transition", transitions)):
        for name, seconds in spent.items():
            out[f"CPU-us/{unit} {name}"] = seconds * 1e6 / max(1.0, count)
        out[f"CPU-us/{unit} total"] = sum(spent.values()) * 1e6 / max(1.0, count)
    out |= footprint_of(result).figures()
    out["peak RSS MiB"] = num(result["max_rss_mib"])
    return out


def baseline(path: Path, args: argparse.Namespace, url: str) -> None:
    """The --baseline checkout and this one in alternate rounds on the same file; medians side by side. The
    checkout that goes first alternates too: in two runs on a 2-core box whichever replayed second in a round
    was 5-10 % slower every round (docs/benchmarks.md), and a fixed order would report that as a change."""
    sources = {"before": args.baseline.resolve(), "after": None}
    rows: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
    for i in range(args.rounds):
        order = list(sources.items())
        for name, source in order if i % 2 == 0 else order[::-1]:
            r = run_child(path, args, url, source=source)
            rows[name].append(r)
            print(
                f"  round {i + 1} {name:6}: {num(r['rate']):>9,.0f} events/s, "
                f"{metrics(r)['CPU-us/event total']:.1f} CPU-us/event, {r['transitions']:,} transitions, "
                f"{footprint_of(r).per_customer:,.0f} bytes/customer  ({r['code']})"
            )
    print(f"\nmedians of {args.rounds} alternate rounds, {load_average()}:")
    before, after = ([metrics(r) for r in rows[name]] for name in ("before", "after"))
    print("\n".join(side_by_side(before, after, ("before", "after"))))
    counts = {name: {int(num(r["transitions"])) for r in results} for name, results in rows.items()}
    same = "the same" if counts["before"] == counts["after"] and len(counts["after"]) == 1 else "DIFFERENT"
    print(f"  transitions before {sorted(counts['before'])}, after {sorted(counts['after'])}: {same}")
    for name in ("before", "after"):
        print(f"\n{name}, last round:")
        print("\n".join(footprint_of(rows[name][-1]).lines()))


def write_samples(args: argparse.Namespace, tmp: Path) -> dict[str, Path]:
    """The files to replay: the order-history profile's file, or the default profile's quarter and full."""
    from streams.sample import generator as sample

    paths = {}
    if args.profile == "order-history":
        customers = args.customers or ORDER_HISTORY_CUSTOMERS
        specs = {"full": sample.SampleSpec(customers=customers, days=548, seed=11, profile=args.profile)}
    else:
        customers = args.customers or max(1, args.events // 120)
        specs = {
            name: sample.SampleSpec(customers=customers, days=365, seed=11, malformed_share=0.002, limit=n)
            for name, n in (("quarter", max(1, args.events // 4)), ("full", args.events))
        }
    for name, spec in specs.items():
        paths[name] = tmp / f"{name}.jsonl.gz"
        started = time.monotonic()
        lines = sample.write_jsonl(spec, paths[name])
        print(
            f"{name}: {lines:,} lines ({customers:,} customers, {spec.days} days, profile {spec.profile}), "
            f"written in {time.monotonic() - started:.1f}s"
        )
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", choices=("default", "order-history"), default="default")
    parser.add_argument("--events", type=int, default=1_000_000, help="default profile: lines in the file")
    parser.add_argument(
        "--customers", type=int, help="population (default: events / 120; order-history 23500)"
    )
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--batch", type=int, default=0, help="events per replay batch (0: the replay's default)"
    )
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--compare-processes", type=int, default=0, metavar="N")
    parser.add_argument("--baseline", type=Path, help="checkout replayed in alternate rounds (before)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cprofile", action="store_true", help="one more replay under cProfile")
    args = parser.parse_args()
    url = redis_url()
    print(f"machine: {describe()}; {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_samples(args, Path(tmp))
        if args.baseline is not None:
            baseline(paths["full"], args, url)
        else:
            for name, path in sorted(paths.items(), key=lambda item: item[0] != "quarter"):
                r = run_child(path, args, url)
                print(
                    f"replay {name:>8}: {r['events']:>10,} events, {r['customers']:,} customers,"
                    f" {r['dead_letters']:,} dead letters: {r['seconds']:.1f}s = {r['rate']:,.0f} events/s,"
                    f" peak RSS {r['max_rss_mib']:.0f} MiB"
                )
                print("\n".join(budget(r)))
        if args.compare_processes > 1:
            compare(paths["full"], args, url)
        if args.cprofile:
            name = "quarter" if "quarter" in paths else "full"
            r = run_child(paths[name], args, url, profile=True)
            print(f"\ncProfile of the {name} replay ({r['rate']:,.0f} events/s under the profiler):")
            print(r["profile"])
    print(load_average())


if __name__ == "__main__":
    main()
