"""Region group names are non-empty strings, checked when the definitions load.

A YAML key that is not a string (`1:`, or `yes:`/`on:`, which YAML 1.1 reads as booleans) ended loading in a
TypeError traceback instead of a line naming the key. An empty name (`"": [FR]`) was accepted: customers of
that group got the segment `""`, published as a move from None to "", and the customer hash, whose readable
fields leave empty texts out, showed them in no region segment at all (nor any `why` for it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from segmentation import Definitions, DefinitionsError
from segmentation.state_mapping import state_to_mapping
from tests.unit.seg_helpers import day, definitions_with, ev, run


@pytest.mark.parametrize("name", [1, True, None, ""], ids=["int", "yes", "null", "empty"])
def test_a_group_name_that_is_not_a_non_empty_string_is_refused(name: object) -> None:
    with pytest.raises(DefinitionsError, match=r"region\.groups\.\S*: group names are non-empty strings"):
        definitions_with(region={"groups": {"west": ["FR"], name: ["DE"]}})


def test_a_yaml_boolean_key_is_refused_with_one_line(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "segmentation" / "definitions.yaml").read_text()
    path = tmp_path / "definitions.yaml"
    path.write_text(text.replace("    east: [PL,", "    on: [PL,", 1), encoding="utf-8")
    with pytest.raises(DefinitionsError, match=r"region\.groups\.True: group names are non-empty strings"):
        Definitions.from_yaml(path)


def test_every_customer_with_a_declared_region_has_a_readable_region_segment() -> None:
    definitions = definitions_with(region={"groups": {"west": ["FR"]}})
    state, transitions = run([ev("profile_update", day(0), region="FR")], definitions)
    assert [(t.from_segment, t.to_segment) for t in transitions if t.grid == "region"] == [(None, "west")]
    assert state_to_mapping(state)["region"] == "west"
