"""`replay --delimiter`: the one character between a CSV export's columns."""

from __future__ import annotations

import argparse

_TAB_NAMES = ("\\t", "tab", "TAB")  # `--delimiter '\t'` reaches us as backslash and t


def delimiter(text: str) -> str:
    """One character (Python's csv takes no other), a tab for `\\t` or `tab`; anything else is a usage error
    (exit 2) instead of a traceback when the header is read."""
    value = "\t" if text in _TAB_NAMES else text
    if len(value) != 1 or value in '\r\n"':
        raise argparse.ArgumentTypeError(f"{text!r}: expected one character other than a quote or line break")
    return value
