"""The chaos suite's verdicts on hand-made inputs (no services): a harness that cannot see a difference
would report every scenario as held."""

from __future__ import annotations

from tests.chaos.compare import Verdict, compare_dead_letters, compare_ids, state_differences


def test_equal_namespaces_have_no_differences() -> None:
    dump = {"{t:0}:c:c1": {"orders": "1"}, "{t:0}:due": [("c1", 1.0)], "{t:0}:m:rfm:new": ["c1"]}
    assert state_differences(dump, dict(dump)) == []


def test_every_kind_of_key_difference_is_reported() -> None:
    reference = {
        "{t:0}:c:c1": {"orders": "1", "clock": "a"},
        "{t:0}:c:c2": {"orders": "2"},
        "{t:0}:h:c1": ["x"],
        "{t:0}:meta": {"offset": "9", "watermark": "5"},
    }
    got = {
        "{t:0}:c:c1": {"orders": "2", "clock": "a"},
        "{t:0}:h:c1": ["x", "y"],
        "{t:0}:meta": {"offset": "9", "watermark": "5"},
        "{t:0}:m:lifecycle:lost": ["c1"],
    }
    lines = state_differences(reference, got)
    assert "1 customer keys missing: c:c2" in lines
    assert any(
        line.startswith("1 customer keys differ: c:c1 [1 fields: orders ref=1 got=2") for line in lines
    )
    assert any(line.startswith("1 history keys differ") for line in lines)
    assert "1 membership keys extra: m:lifecycle:lost" in lines
    assert not any("meta" in line for line in lines)


def test_transition_ids_missing_and_foreign_fail_redeliveries_do_not() -> None:
    held = Verdict()
    compare_ids(["a", "b"], ["a", "b", "b"], held)
    assert held.held and held.info == ["1 redelivered transitions (same id, allowed)"]
    lost = Verdict()
    compare_ids(["a", "b"], ["a", "z"], lost)
    assert lost.problems == [
        "1 reference transition ids missing: b",
        "1 transition ids not in the reference: z",
    ]


def test_dead_letters_compare_origins() -> None:
    held = Verdict()
    compare_dead_letters([(0, 1), (1, 4)], [(1, 4), (0, 1), (0, 1)], held)
    assert held.held
    lost = Verdict()
    compare_dead_letters([(0, 1), (1, 4)], [(0, 1), (2, 2)], lost)
    assert len(lost.problems) == 2 and "missing p1@4" in lost.problems[0]
