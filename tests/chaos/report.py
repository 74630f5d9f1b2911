"""The results table of docs/reliability.md, refreshed in place between two markers."""

from __future__ import annotations

import platform
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tests.chaos.runner import Row

START, END = "<!-- chaos-results:start -->", "<!-- chaos-results:end -->"


def table(rows: Sequence[Row], command: str, elapsed_s: float) -> str:
    by_name: dict[str, list[Row]] = {}
    for row in rows:
        by_name.setdefault(row.scenario, []).append(row)
    lines = [
        f"Last run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `{command}`, {elapsed_s / 60:.1f} min, "
        f"{platform.machine()} {platform.system()}, Python {platform.python_version()}.",
        "",
        "| scenario | runs | events | held | first differences | workers that exited by themselves |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in by_name.items():
        held = sum(1 for r in runs if r.held)
        verdict = "held" if held == len(runs) else f"**NOT HELD** ({len(runs) - held} of {len(runs)})"
        first = next((r for r in runs if not r.held), None)
        diff = "" if first is None else f"seed {first.seed}: " + "; ".join(first.problems[:3])
        crashes = [c for r in runs for c in r.crashes]
        crashed = f"{len(crashes)}: {crashes[0][:160]}" if crashes else "0"
        lines.append(
            f"| {name} | {len(runs)} | {sum(r.events for r in runs):,} | {verdict} | {_cell(diff)} "
            f"| {_cell(crashed)} |"
        )
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write(path: Path, rows: Sequence[Row], command: str, elapsed_s: float) -> None:
    text = path.read_text() if path.exists() else f"# Reliability\n\n{START}\n{END}\n"
    block = f"{START}\n{table(rows, command, elapsed_s)}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
