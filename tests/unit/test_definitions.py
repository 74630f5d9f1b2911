"""Definitions: the shipped default, YAML loading, and every validation error named precisely."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from segmentation import Definitions, DefinitionsError
from segmentation.config_reading import read_decimal
from tests.unit.seg_helpers import DEFAULT, definitions_with

DEFAULT_YAML = Path(__file__).resolve().parents[2] / "segmentation" / "definitions.yaml"


def test_default_is_loaded_once_hashable_and_complete() -> None:
    assert Definitions.default() is DEFAULT
    assert DEFAULT.version == "2026.12-1"
    assert DEFAULT.currency == "EUR"
    assert DEFAULT.rates["USD"] == read_decimal("0.92", "x")
    assert DEFAULT.rates["EUR"] == 1
    assert DEFAULT.recent_event_ids == 64
    assert hash(DEFAULT) == hash(Definitions.from_yaml(DEFAULT_YAML))
    assert Definitions.from_yaml(str(DEFAULT_YAML)) == DEFAULT
    assert [rule.name for rule in DEFAULT.audiences] == ["vip_recent", "win_back", "unhappy_recent_buyers"]
    # the classic RFM map has 11 segments + no_purchase: more than the 10 a grid should have
    assert DEFAULT.warnings == ("grid 'rfm' has 12 segments (a grid should have 3 to 10)",)


def test_every_yaml_field_is_commented() -> None:
    """Each key has a comment on its line or on the line just above."""
    lines = DEFAULT_YAML.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"\s*[A-Za-z_]+:", line) and "#" not in line:
            assert lines[index - 1].strip().startswith("#"), f"uncommented key: {line!r}"


def test_warnings_for_too_small_or_too_large_grids() -> None:
    tiny = definitions_with(value={"tiers": [{"segment": "all", "from": "0"}]}, audiences={})
    assert "grid 'value' has 1 segments (a grid should have 3 to 10)" in tiny.warnings


def _load(text: str, tmp_path: Path) -> Definitions:
    path = tmp_path / "definitions.yaml"
    path.write_text(text)
    return Definitions.from_yaml(path)


def test_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(DefinitionsError, match="not valid YAML"):
        _load("version: [unclosed", tmp_path)
    with pytest.raises(DefinitionsError, match="expected a mapping at the top level"):
        _load("- a\n- b\n", tmp_path)


def _raw(**override: Any) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(DEFAULT_YAML.read_text())
    raw.update(override)
    return raw


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"version": ""}, "version: expected a non-empty string"),
        ({"colour": "red"}, r"definitions: unknown keys \['colour'\]"),
        ({"lifecycle": {"lost_days": 3}}, r"lifecycle: unknown keys \['lost_days'\]"),
        ({"lifecycle": [1]}, "lifecycle: expected a mapping"),
        ({"lifecycle": {"lost_after_days": "180"}}, "lifecycle.lost_after_days: expected an integer"),
        ({"lifecycle": {"lost_after_days": True}}, "lifecycle.lost_after_days: expected an integer"),
        ({"currency": "EURO"}, "currency: 'EURO' is not an ISO 4217 code"),
        ({"currency_rates": {"XYZ": "1"}}, "currency_rates.XYZ: not an ISO 4217"),
        ({"currency_rates": {"USD": "0"}}, "currency_rates.USD: must be > 0"),
        ({"currency_rates": {"EUR": "2"}}, "and 1 for the base currency"),
        ({"currency_rates": {"USD": 0.92}}, "expected a decimal string"),
        ({"recent_event_ids": 0}, "recent_event_ids: must be between 1 and 10000"),
        ({"rfm": {**_raw()["rfm"], "segments": [{"segment": "x", "r": "2-5"}]}}, "R1-F1-M1, R1-F1-M2"),
        ({"value": {"tiers": [{"segment": "x", "from": "10"}]}}, "must start at 0"),
        ({"audiences": {"bad": "orders >>= 2"}}, "audiences.bad: rule 'bad'"),
        ({"audiences": ["x"]}, "audiences: expected a mapping"),
        # read-side counters name a move `<from>><to>` ('-': none) and a crossing's cell `<a>|<b>`
        ({"value": {"tiers": [{"segment": "a", "from": "0"}, {"segment": ">500", "from": "5"}]}}, "'>500'"),
        ({"value": {"tiers": [{"segment": "-", "from": "0"}, {"segment": "b", "from": "5"}]}}, "value: seg"),
        ({"region": {"groups": {"a|b": ["FR"]}}}, "region: segment name 'a|b' is not allowed"),
        # a bound no amount can reach: Decimal overflowed on it (a traceback at load)
        ({"rfm": {**_raw()["rfm"], "monetary": ["50", "150", "400", "1e999999"]}}, r"rfm.monetary\[3\]: '1e"),
        (
            {"value": {"tiers": [{"segment": "a", "from": "0"}, {"segment": "b", "from": "1.01e15"}]}},
            "10\\^15",
        ),
        ({"currency_rates": {"USD": "1E+999999"}}, "currency_rates.USD: '1E"),
        # an int past a float's range (OverflowError) and unknown keys of mixed types (sorted: TypeError)
        (
            {"email": {**_raw()["email"], "half_life_days": int("1" + "0" * 400)}},
            r"email.half_life_days: expected a finite number, got 10{36}\.\.\.$",
        ),
        (
            {"rfm": {**_raw()["rfm"], "segments": [{"segment": "x", "r": "1-5", True: 1, "mm": 2}]}},
            r"rfm.segments\[0\]: unknown keys \['True', 'mm'\]",
        ),
    ],
)
def test_validation_errors(override: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        Definitions.from_mapping(_raw(**override))


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(DefinitionsError, match="expected a mapping at the top level, got list"):
        Definitions.from_mapping([])  # type: ignore[arg-type]


def test_missing_sections_use_defaults_where_they_exist() -> None:
    raw = _raw()
    for key in ("lifecycle", "email", "channel", "satisfaction", "currency_rates", "audiences", "region"):
        del raw[key]
    raw["currency"] = "JPY"
    raw["rfm"]["monetary"] = ["5000", "15000", "40000", "100000"]
    raw["value"]["tiers"] = [{"segment": "none", "from": "0"}, {"segment": "some", "from": "1"}]
    definitions = Definitions.from_mapping(raw)
    assert definitions.lifecycle.lost_after_days == 180
    assert definitions.rates == {"JPY": 1}
    assert definitions.audiences == ()
    assert definitions.region.segments == ("other", "unknown")
    assert definitions.rfm.monetary_minor == (5000, 15000, 40000, 100000)


def test_a_bound_of_exactly_10_to_the_15_is_no_limit_and_accepted() -> None:
    """Every amount is below 10^15, so `max_amount: "1000000000000000"` says "no limit" (a test lets huge
    purchases through that way); only what lies above it is refused."""
    assert read_decimal("1000000000000000", "max_amount") == Decimal(10) ** 15
    with pytest.raises(DefinitionsError, match="above 10\\^15"):
        read_decimal("1000000000000000.01", "max_amount")
