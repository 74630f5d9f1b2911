"""A key written twice in a definitions file is refused, naming both lines, instead of the last one silently
winning: a second `audiences:` section (a common slip when adding one at the end of the file) dropped every
audience of the first, and `definitions apply` then moved all their members out."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmentation import Definitions, DefinitionsError
from segmentation.safe_yaml import MAX_MESSAGE, load_bounded

DEFAULT_YAML = Path(__file__).resolve().parents[2] / "segmentation" / "definitions.yaml"


def test_a_second_section_is_refused_not_merged_over_the_first(tmp_path: Path) -> None:
    text = DEFAULT_YAML.read_text(encoding="utf-8")
    first = text.splitlines().index("audiences:") + 1
    path = tmp_path / "definitions.yaml"
    path.write_text(text + "audiences:\n  big_spenders: 'monetary >= 500.00'\n", encoding="utf-8")
    last = len(text.splitlines()) + 1
    with pytest.raises(DefinitionsError) as caught:
        Definitions.from_yaml(path)
    message = str(caught.value)
    assert f"line {last}: duplicate key 'audiences' (first on line {first})" in message
    assert "\n" not in message and len(message) <= MAX_MESSAGE


@pytest.mark.parametrize(
    ("text", "line", "first", "key"),
    [
        ("audiences:\n  vip: 'orders >= 3'\n  vip: 'orders >= 30'\n", 3, 2, "vip"),
        ("lifecycle: {new_for_days: 10, new_for_days: 20}\n", 1, 1, "new_for_days"),
        ("region:\n  groups:\n    west: [FR]\n    west: [DE]\n", 4, 3, "west"),
    ],
    ids=["audience", "flow-mapping", "nested"],
)
def test_duplicate_keys_anywhere_are_refused(text: str, line: int, first: int, key: str) -> None:
    expected = rf"line {line}: duplicate key '{key}' \(first on line {first}\)"
    with pytest.raises(DefinitionsError, match=expected):
        load_bounded(text, "defs.yaml")


def test_distinct_keys_and_the_same_key_in_sibling_mappings_load() -> None:
    loaded = load_bounded("a: {x: 1}\nb: {x: 2}\nc: [{x: 1}, {x: 2}]\n", "defs.yaml")
    assert loaded == {"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 2}]}


def test_a_merge_key_may_still_be_overridden() -> None:
    """`<<` merges are resolved by SafeLoader as before (the mapping's own key wins over a merged one)."""
    assert load_bounded("a: {<<: [{x: 1}, {x: 3}], x: 2, y: 4}\n", "defs.yaml") == {"a": {"x": 2, "y": 4}}


def test_an_unhashable_key_is_still_refused_by_yaml_itself() -> None:
    with pytest.raises(DefinitionsError, match=r"not valid YAML: .*unhashable key"):
        load_bounded("? [a, b]\n: 1\n", "defs.yaml")
