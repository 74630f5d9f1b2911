"""Email numbers that no decay computation can use are refused when the definitions load, naming the key.

`half_life_days: .inf` (a way to say "never decay") was accepted, and then every email open or click of
every customer raised OverflowError inside `apply` (the decay crossing `half_life * log2(...)` is infinite):
each one a dead letter. `click_weight: .inf` made a customer who opened an email `unresponsive` (inf * 0 =
nan, and nan is below every threshold). A finite but absurd half-life overflowed the same way, or spent
seconds per event stepping the crossing microsecond by microsecond.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from segmentation import Definitions, DefinitionsError
from segmentation.email_appetence import MAX_HALF_LIFE_DAYS
from tests.unit.seg_helpers import day, definitions_with, ev, run

DEFAULT_YAML = Path(__file__).resolve().parents[2] / "segmentation" / "definitions.yaml"


def _with_email(tmp_path: Path, line: str) -> Path:
    """The default file with one line of its email section replaced (the key's own line)."""
    key = line.split(":")[0]
    lines = DEFAULT_YAML.read_text(encoding="utf-8").splitlines()
    email = lines.index("email:")
    at = next(i for i in range(email, len(lines)) if lines[i].startswith(f"  {key}:"))
    lines[at] = f"  {line}"
    path = tmp_path / "definitions.yaml"
    path.write_text(
        "\n".join(lines).replace('version: "2026.12-1"', 'version: "email-test"'), encoding="utf-8"
    )
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("half_life_days: .inf", "email.half_life_days: expected a finite number, got inf"),
        ("half_life_days: 1.0e+300", f"email.half_life_days: must be > 0 and at most {MAX_HALF_LIFE_DAYS}"),
        ("click_weight: .inf", "email.click_weight: expected a finite number, got inf"),
        ("engaged_at: .inf", "email.engaged_at: expected a finite number, got inf"),
    ],
)
def test_unusable_email_numbers_are_refused_at_load(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        Definitions.from_yaml(_with_email(tmp_path, line))


def test_the_longest_half_life_allowed_still_applies_opens_and_clicks() -> None:
    email = {"half_life_days": float(MAX_HALF_LIFE_DAYS), "click_weight": 2.0, "engaged_at": 2.5}
    definitions = definitions_with(email={**email, "passive_at": 0.5})
    state, _ = run(
        [ev("email_sent", day(0)), ev("email_click", day(1)), ev("email_open", day(2))], definitions
    )
    assert state.seg_email == "engaged"
    assert state.due_email is not None and state.due_email > day(2)
