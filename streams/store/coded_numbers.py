"""Integers as characters 0x20-0x7f: the numbers of the coded history (streams/store/history_format.py).

Little-endian base-48 digits: 0x50 + d for a digit with more to come, 0x20 + d for the last, so a number
never holds a control character (the history's separators) and is one UTF-8 byte per digit; signed numbers
go through zigzag (0, -1, 1, -2... as 0, 1, 2, 3...).
"""

from __future__ import annotations

from typing import Final

BASE: Final = 48
LAST: Final = tuple(chr(0x20 + d) for d in range(BASE))  # a number's last digit
_MORE: Final = tuple(chr(0x50 + d) for d in range(BASE))


def put(out: list[str], value: int) -> None:
    """Append the digits of `value` (>= 0)."""
    while value >= BASE:
        out.append(_MORE[value % BASE])
        value //= BASE
    out.append(LAST[value])


def number(text: str, i: int) -> tuple[int, int]:
    """The number at `text[i]` and the index after it; ValueError on a character that is no digit."""
    value, scale = 0, 1
    while True:
        c = ord(text[i]) - 0x20
        i += 1
        if c >= BASE:
            c -= BASE
            if c >= BASE:
                raise ValueError(f"not a digit: {text[i - 1]!r}")
            value += c * scale
            scale *= BASE
        elif c >= 0:
            return value + c * scale, i
        else:
            raise ValueError(f"not a digit: {text[i - 1]!r}")


def zig(n: int) -> int:
    return n << 1 if n >= 0 else ((-n) << 1) - 1


def unzig(z: int) -> int:
    return z >> 1 if not z & 1 else -((z + 1) >> 1)
