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
        failed = sum(1 for r in runs if r.held is False)
        errors = sum(1 for r in runs if r.held is None)
        verdict = " ".join(
            [f"**NOT HELD** ({failed} of {len(runs)})"] * bool(failed)
            + [f"**ERROR** ({errors} of {len(runs)}: the harness could not finish)"] * bool(errors)
        ) or ("held" if runs else "")
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


def _merge(old_block: str, new_table: str) -> str:
    """The new table, plus the rows of scenarios this run did not include, kept from the previous table
    (a run of a few scenarios refreshes theirs only) with the previous run's line."""
    ran = {line.split("|")[1].strip() for line in new_table.splitlines() if line.startswith("| ")}
    old_lines = old_block.splitlines()
    kept = [
        line
        for line in old_lines
        if line.startswith("| ") and line.split("|")[1].strip() not in ran | {"scenario"}
    ]
    if not kept:
        return new_table
    previous = [line for line in old_lines if line.startswith(("Last run:", "Rows not rerun"))]
    note = "Rows not rerun come from: " + previous[0].removeprefix("Last run: ") if previous else ""
    return "\n".join([*new_table.splitlines(), *kept, "", note]).rstrip()


def write(path: Path, rows: Sequence[Row], command: str, elapsed_s: float) -> None:
    text = path.read_text() if path.exists() else f"# Reliability\n\n{START}\n{END}\n"
    new_table = table(rows, command, elapsed_s)
    found = re.search(re.escape(START) + "(.*?)" + re.escape(END), text, flags=re.S)
    if found:
        new_table = _merge(found.group(1), new_table)
    block = f"{START}\n{new_table}\n{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
