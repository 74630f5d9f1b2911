"""Run one `segstream` command and keep every commit script call it made: (keys, args) in a pickle.

    python benchmarks/commit_capture.py OUT.pickle replay FILE --namespace NS --force ...

bench_commit_replay.py's child: the commits of a real replay, replayed alone against Redis, show what the
commit script costs on that shape (and what another version of the script would), without the worker.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

Call = tuple[list[str], list[bytes | str | int]]


def main() -> None:
    out, argv = Path(sys.argv[1]), sys.argv[2:]
    from streams.store import round_trips

    calls: list[Call] = []
    original = round_trips.RoundTrips.script

    async def script(self: Any, body: Any, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        calls.append(
            ([str(k) for k in keys], [a if isinstance(a, bytes | str | int) else str(a) for a in args])
        )
        return await original(self, body, keys, args)

    setattr(round_trips.RoundTrips, "script", script)  # noqa: B010  (patched before any store exists)
    from streams.cli import main as cli

    sys.argv = ["segstream", *argv]
    try:
        cli()
    finally:
        with out.open("wb") as f:
            pickle.dump(calls, f)


if __name__ == "__main__":
    main()
