"""Definitions YAML is read within limits: no anchors/aliases, bounded size, depth and node count, and every
failure is one short line (the alias bomb and the 10,000-deep document of issue 12)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from segmentation import Definitions, DefinitionsError
from segmentation.safe_yaml import MAX_DEPTH, MAX_MESSAGE, MAX_NODES, MAX_SIZE, load_bounded, one_line


def _bomb(levels: int) -> str:
    lines = ["version: x", "audiences:", "  l0: &l0 [" + ",".join(["'lol'"] * 9) + "]"]
    lines += [f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


BOMB = _bomb(9)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BOMB, "anchors and aliases"),
        ("a: &x 1\n", "anchors and aliases"),
        ("a: " + "[" * 10_000 + "]" * 10_000, f"nested deeper than {MAX_DEPTH}"),
        ("a: [" + ",".join(["1"] * (MAX_NODES + 1)) + "]", f"more than {MAX_NODES} YAML nodes"),
        ("version: '" + "x" * MAX_SIZE + "'", f"larger than {MAX_SIZE} bytes"),
        ("a: [\n  b: c\n", "not valid YAML"),
    ],
    ids=["alias-bomb", "anchor", "deep", "nodes", "size", "syntax"],
)
def test_hostile_yaml_fails_fast_on_one_short_line(text: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(DefinitionsError) as caught:
        load_bounded(text, "defs.yaml")
    assert time.monotonic() - started < 10.0  # unguarded, the bomb expands 9**9 nodes: minutes, or no memory
    assert message in str(caught.value)
    assert "\n" not in str(caught.value) and len(str(caught.value)) <= MAX_MESSAGE


@pytest.mark.parametrize(
    "text",
    [
        "version: x\nearliest_event_time: 2024-13-01\n",
        "version: x\nearliest_event_time: 2024-02-30 10:00:00+00:00\n",
        "version: x\nrecent_event_ids: " + "9" * 5_000 + "\n",
        "version: !!int abc\n",
        "version: !!float abc\n",
    ],
    ids=["month-13", "feb-30", "int-5000-digits", "int-tag", "float-tag"],
)
def test_what_pyyaml_itself_refuses_is_one_line_too(text: str) -> None:
    """PyYAML's constructors raise plain ValueErrors for these: they were a traceback (exit 1, HTTP 500)."""
    with pytest.raises(DefinitionsError, match=r"^defs\.yaml: not valid YAML: ") as caught:
        load_bounded(text, "defs.yaml")
    assert "\n" not in str(caught.value) and len(str(caught.value)) <= MAX_MESSAGE


def test_nesting_within_the_limit_loads() -> None:
    depth = MAX_DEPTH - 1
    assert load_bounded("a: " + "[" * depth + "1" + "]" * depth, "x") == {"a": eval_nested(depth)}


def eval_nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_one_line_cuts_and_flattens() -> None:
    assert one_line("a\n  b") == "a b"
    assert one_line("x" * 500, 10) == "x" * 9 + "…"


def test_from_yaml_files(tmp_path: Path) -> None:
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(DefinitionsError, match="cannot read"):
        Definitions.from_yaml(binary)
    with pytest.raises(DefinitionsError, match="cannot read"):
        Definitions.from_yaml(tmp_path / "missing.yaml")
    huge = tmp_path / "huge.yaml"
    huge.write_text("currency: '" + "X" * 10_000 + "'\n", encoding="utf-8")
    with pytest.raises(DefinitionsError) as caught:
        Definitions.from_yaml(huge)
    assert len(str(caught.value)) <= MAX_MESSAGE  # a quoted value is cut, not repeated in full
    default = Path(__file__).parents[2] / "segmentation" / "definitions.yaml"
    assert Definitions.from_yaml(default) == Definitions.default()


def test_yaml_timestamps_are_still_read(tmp_path: Path) -> None:
    """The bounded loader keeps SafeLoader's constructors: an unquoted timestamp is a date-time."""
    path = tmp_path / "t.yaml"
    default = (Path(__file__).parents[2] / "segmentation" / "definitions.yaml").read_text(encoding="utf-8")
    text = default.replace(
        'earliest_event_time: "1970-01-01T00:00:00Z"', "earliest_event_time: 2026-01-01T00:00:00Z"
    )
    path.write_text(text, encoding="utf-8")
    assert Definitions.from_yaml(path).earliest_event_time.year == 2026
