"""Redis CPU of the commit script on a real replay's commits, split by what the commits carry.

    .venv/bin/python benchmarks/bench_commit_replay.py [--customers 23500] [--file FILE] [--batch N]
        [--rounds 3] [--baseline DIR]
    .venv/bin/python benchmarks/bench_commit_replay.py --calls FILE --events N   # captured elsewhere

Why: an order-history import spends ~40 CPU-µs per event in Redis, nearly all of it inside the commit
script (streams/store/commit.lua), and bench_commit_script.py's synthetic commits do not say which part of a
real commit costs what. This replays a file (the order-history profile by default) once with
`benchmarks/commit_capture.py`, keeping every commit call (keys and arguments), then runs those calls again
alone, in order, on emptied keys (so the worker's CPU is not in it), and reads the script's time from
`INFO commandstats` (`cmdstat_evalsha`: the commands it calls included). Each round runs the calls as they
were and two reduced copies: without the counter ops (HINCRBY: KPI, day, move and crossing counters) and
without the membership moves (the BITS op's `M` entries; the ordinals are still given, so every later call
is still valid). The differences are those parts' cost. With `--baseline DIR`, DIR's commit.lua (another
checkout) runs the same calls in alternate rounds: a change of the script alone, measured on the same
commits (as that script reads them: without the marks of due times left unchanged for a script before
66f05b5, with NUL-joined parts instead of msgpack arrays for one before the msgpack blocks). Best of
`--rounds` per variant (the script's time is deterministic work; the box's noise only adds).
Uses SEGSTREAM_REDIS_URL, else the local stack; its keys are deleted after.
"""

from __future__ import annotations

import argparse
import gzip
import os
import pickle
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from benchmarks.commit_capture import Call
from benchmarks.footprint import drop
from benchmarks.machine import describe
from benchmarks.replay_child import redis_url
from streams.store.commit_script import pack, unpack

ROOT = Path(__file__).resolve().parents[1]
FIRST_OP = 5  # packed commits: fence:seq, offset, watermark, '<writes>:<parts>', the parts; then the ops


def ops(args: list[bytes | str | int]) -> list[tuple[str, list[bytes | str | int]]]:
    """The index ops of a packed commit's arguments: (name without '*', its arguments)."""
    out, i = [], FIRST_OP
    while i < len(args):
        name, n = _text(args[i]), int(args[i + 2])
        width = 4 if name.endswith("*") else 3 + n
        out.append((name.rstrip("*"), args[i : i + width]))
        i += width
    return out


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def without(
    calls: list[Call], keep: Callable[[str, list[bytes | str | int]], list[bytes | str | int]]
) -> list[Call]:
    """The calls with each op replaced by `keep(name, op)` (an empty list drops it)."""
    out = []
    for keys, args in calls:
        kept = list(args[:FIRST_OP])
        for name, op in ops(args):
            kept += keep(name, op)
        out.append((keys, kept))
    return out


def no_moves(name: str, op: list[bytes | str | int]) -> list[bytes | str | int]:
    """A BITS op with its `A` entries (ordinals given) only; other ops as they are."""
    if name != "BITS":
        return op
    if len(op) != 4:
        raise SystemExit("an unpacked BITS op: this benchmark reads packed ones only")
    parts, kept, j = unpack(_bytes(op[3])), [], 0
    while j < len(parts):
        if parts[j] == b"A":
            kept += parts[j : j + 2]
            j += 2
        else:
            j += 3 + int(parts[j + 2])
    return [op[0], op[1], len(kept), pack(kept)] if kept else []


def _bytes(value: bytes | str | int) -> bytes:
    return value if isinstance(value, bytes) else _text(value).encode()


def unmarked(calls: list[Call]) -> list[Call]:
    """The calls without the '=' of due times marked unchanged (a script before 66f05b5 refuses it): what the
    worker sent before it marked them."""
    out = []
    for keys, args in calls:
        writes = int(_text(args[3]).split(":")[0])
        parts, j = unpack(_bytes(args[4])), 0
        for _ in range(writes):
            parts[j + 2] = parts[j + 2].removeprefix(b"=")
            j += 5 + 2 * int(parts[j + 3]) + int(parts[j + 4])
        out.append((keys, [*args[:4], pack(parts), *args[5:]]))
    return out


def nul_joined(calls: list[Call]) -> list[Call]:
    """The calls with every packed argument as its parts joined by NUL: what a script before the msgpack
    blocks (its commit.lua has no `cmsgpack`) reads."""
    out = []
    for keys, args in calls:
        joined = [*args[:4], b"\0".join(unpack(_bytes(args[4])))]
        for _, op in ops(args):
            joined += [*op[:3], b"\0".join(unpack(_bytes(op[3])))] if len(op) == 4 else op
        out.append((keys, joined))
    return out


def for_script(text: str, calls: list[Call]) -> list[Call]:
    """The calls as the script `text` (another checkout's) reads them."""
    if "string.byte(at, 1) == 61" not in text:  # no due marks yet
        calls = unmarked(calls)
    return calls if "cmsgpack" in text else nul_joined(calls)


def run(client: redis.Redis, sha: str, calls: list[Call], prefix: str) -> tuple[float, int]:
    """Seconds of script time over `calls` run in order on emptied keys, and how many were refused."""
    drop(client, prefix)
    claimed: set[str] = set()
    for keys, args in calls:  # each partition as its claim left it: fence and owner, no commit yet
        if keys[0] not in claimed:
            claimed.add(keys[0])
            token, _, owner = _text(args[0]).split(":") + [""] * (3 - len(_text(args[0]).split(":")))
            client.hset(keys[0], mapping={"fence": token, "owner": owner, "seq": 0})
    client.config_resetstat()
    refused = 0
    for keys, args in calls:
        try:
            client.evalsha(sha, len(keys), *keys, *args)
        except redis.ResponseError:
            refused += 1
    spent = float(client.info("commandstats")["cmdstat_evalsha"]["usec"]) / 1e6
    drop(client, prefix)
    return spent, refused


def capture(path: Path, prefix: str, out: Path, tmp: Path, batch: int) -> None:
    env = os.environ | {"SEGSTREAM_KEY_PREFIX": prefix, "SEGSTREAM_REDIS_URL": redis_url()}
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "commit_capture.py"), str(out), "replay", str(path),
         "--namespace", "bench", "--force", "--no-progress", "--output-dir", str(tmp),
         *(["--batch", str(batch)] if batch else [])],
        check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=23_500, help="order-history profile's population")
    parser.add_argument("--file", type=Path, help="replay this JSONL file instead of generating one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=0, help="the replay's events per partition and commit")
    parser.add_argument("--calls", type=Path, help="commit calls captured by commit_capture.py (no replay)")
    parser.add_argument("--events", type=int, default=0, help="with --calls: the events they committed")
    parser.add_argument("--baseline", type=Path, help="another checkout: its commit.lua in alternate rounds")
    args = parser.parse_args()
    client = redis.Redis.from_url(redis_url())
    if args.calls is not None:  # captured elsewhere (a live worker under load, say): run on its own keys
        with args.calls.open("rb") as f:
            calls: list[Call] = pickle.load(f)
        prefix, events = calls[0][0][0].split(":", 1)[0], args.events
    else:
        prefix = f"bench-commit-{uuid.uuid4().hex[:8]}"
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            path = args.file
            if path is None:
                from streams.sample import generator as sample

                path = tmp / "orders.jsonl.gz"
                spec = sample.SampleSpec(customers=args.customers, days=548, seed=11, profile="order-history")
                sample.write_jsonl(spec, path)
            capture(path, prefix, tmp / "calls.pickle", tmp, args.batch)
            with (tmp / "calls.pickle").open("rb") as f:
                calls = pickle.load(f)
            events = _events(path)
    unpacked = [n for n, (_, a) in enumerate(calls) if len(a) < FIRST_OP or ":" not in _text(a[3])]
    if unpacked:
        raise SystemExit(
            f"{len(unpacked)} of {len(calls)} commit calls are unpacked (a part held NUL; the first is call "
            f"{unpacked[0]}): this benchmark splits packed commits only"
        )
    scripts = {"after": (ROOT / "streams/store/commit.lua").read_text()}
    if args.baseline is not None:
        scripts = {"before": (args.baseline / "streams/store/commit.lua").read_text()} | scripts
    shas = {name: client.script_load(text) for name, text in scripts.items()}
    variants = {
        "as replayed": calls,
        "without counters": without(calls, lambda name, op: [] if name == "HINCRBY" else op),
        "without membership moves": without(calls, no_moves),
    }
    counted = {
        "commits": len(calls),
        "customer writes": sum(int(_text(a[3]).split(":")[0]) for _, a in calls),
    }
    for _, a in calls:
        for name, op in ops(a):
            counted[f"{name} args"] = counted.get(f"{name} args", 0) + int(op[2])
    print(f"machine: {describe()}; Redis {client.info('server')['redis_version']}")
    print((f"{events:,} events: " if events else "") + ", ".join(f"{v:,} {k}" for k, v in counted.items()))
    best: dict[tuple[str, str], float] = {}
    before = {}
    if "before" in shas:
        before = {variant: for_script(scripts["before"], cs) for variant, cs in variants.items()}
    for _ in range(args.rounds):
        for script, sha in shas.items():
            for variant, cs in variants.items():
                spent, refused = run(client, sha, before[variant] if script == "before" else cs, prefix)
                if refused:
                    raise SystemExit(f"{script}, {variant}: {refused} commits refused")
                best[(script, variant)] = min(best.get((script, variant), spent), spent)
    per = max(1, events) if events else len(calls)  # per event, or per commit when the events are unknown
    unit = "event" if events else "commit"
    for script in shas:
        full = best[(script, "as replayed")]
        counters = full - best[(script, "without counters")]
        moves = full - best[(script, "without membership moves")]
        fields, writes = max(1, counted.get("HINCRBY args", 0) // 2), max(1, counted["customer writes"])
        rest = full - counters - moves
        print(
            f"{script:>6}: script {full:.3f} s = {full / per * 1e6:.1f} µs per {unit}; counters"
            f" {counters / per * 1e6:.1f} ({counters / fields * 1e6:.2f} µs per field), membership moves"
            f" {moves / per * 1e6:.1f}, the rest {rest / per * 1e6:.1f} µs per {unit}"
            f" ({rest / writes * 1e6:.2f} µs per customer write)"
        )
    if "before" in shas:
        for variant in variants:
            ratio = best[("after", variant)] / best[("before", variant)]
            print(f"  {variant}: after/before {ratio:.2f}x")


def _events(path: Path) -> int:
    """Non-blank lines of the file (the replay's events, rejected lines included)."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return sum(1 for line in f if line.strip())


if __name__ == "__main__":
    main()
