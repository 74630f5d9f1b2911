"""The definitions log's summaries: customers moved per grid from a diff matrix, and the printed history."""

from __future__ import annotations

from collections import Counter
from typing import Any

from streams.store.definitions_log import default_by, moved_per_grid, now_text, table


def test_moved_per_grid_counts_off_diagonal_cells_only() -> None:
    cells = Counter(
        {
            ("value", "medium", "low"): 2,
            ("value", "low", "low"): 5,
            ("rfm", "new", "new"): 7,
            ("lifecycle", "active", "at_risk"): 1,
            ("lifecycle", "-", "new"): 3,
        }
    )
    assert moved_per_grid(cells) == {"lifecycle": 4, "value": 2}
    assert moved_per_grid(Counter({("rfm", "new", "new"): 7})) == {}


def test_table_names_when_what_and_who() -> None:
    assert table("main", []) == "namespace 'main': no definitions change recorded"

    def entry(
        action: str, version: str, previous: str | None, at: str, by: str, **rest: object
    ) -> dict[str, Any]:
        base = {"action": action, "version": version, "previous_version": previous, "applied_at": at}
        return {**base, "by": by, "customers": 1200, **rest}

    log = [
        entry("replay", "v1", None, "2026-12-01T10:00:00Z", "ci", source="orders.csv",
              transitions_by_grid={"lifecycle": 3000}),
        entry("apply", "v2", "v1", "2026-12-02T09:30:00Z", "alice", source="v2.yaml",
              moved={"rfm": 40, "value": 1}),
        entry("apply", "v2", "v2", "2026-12-02T09:31:00Z", "alice", source="v2.yaml", moved={}),
    ]  # fmt: skip
    assert table("main", log).splitlines() == [
        "namespace 'main': 3 definitions change(s), oldest first",
        "2026-12-01T10:00:00Z  v1  by ci",
        "    replay of orders.csv: 1,200 customers; transitions: lifecycle 3,000",
        "2026-12-02T09:30:00Z  v1 -> v2  by alice",
        "    apply of v2.yaml: 1,200 customers; moved: rfm 40, value 1",
        "2026-12-02T09:31:00Z  v2  by alice",
        "    apply of v2.yaml: 1,200 customers; moved: none",
    ]


def test_defaults() -> None:
    assert default_by() and now_text().endswith("Z") and "T" in now_text()
