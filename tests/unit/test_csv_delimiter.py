"""`replay --delimiter`: one character, a tab as `\\t` or `tab`; anything else a usage error (exit 2)."""

from __future__ import annotations

import argparse

import pytest

from streams.cli import main
from streams.replay.csv_delimiter import delimiter


@pytest.mark.parametrize(
    ("given", "used"), [(",", ","), (";", ";"), ("|", "|"), ("\\t", "\t"), ("tab", "\t")]
)
def test_one_character_or_a_tab_by_name(given: str, used: str) -> None:
    assert delimiter(given) == used


@pytest.mark.parametrize("given", ["", "ab", "\\t;", '"', "\n", "\r"])
def test_anything_else_is_refused(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected one character"):
        delimiter(given)


def test_the_command_line_says_so_in_one_line_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """It was a traceback from Python's csv at the header (exit 1)."""
    with pytest.raises(SystemExit) as stopped:
        main(["replay", "orders.csv", "--delimiter", "ab"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "--delimiter: 'ab': expected one character other than a quote or line break" in err
    assert "Traceback" not in err
