"""Day counter field names coded: `potential_loyalist:revenue:3` is stored as `15:1:3`.

Why: a week's `d:`, `f:` and `t:` hash is a listpack whose bytes are mostly its field names (a segment name,
a metric or direction, the weekday) beside small integer values; the names repeated in every partition and
week were ~70 % of the day counters' memory on an order-history import. Each name is cut into tokens at `:`
and `>` (the separators of `<segment>:<metric>`, `<segment>:in|out` and `<from>><to>`), and a token of
`TOKENS` is stored as its index in decimal. The rest is stored as itself, so custom segment names need no
table of their own and definitions may change freely; a token that would read as a code (all digits) or that
starts with the escape `~` is stored behind a `~`. So any name comes back exactly: `decode(encode(n)) == n`.

`TOKENS` is frozen with the day counter format (`weeks.FORMAT`): a new token appended here needs a new
format, since names already stored would read back differently.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from segmentation.kpi_figures import DAY_METRICS
from streams.store.preset_names import PRESET

# The day metrics and flow directions first (one-digit codes: they are in every field), then the segments of
# the default definitions as the history codes them (preset_names.PRESET, frozen too), each name once.
# Frozen: see the module doc; tests/unit/test_day_names.py pins the table.
TOKENS: Final[tuple[str, ...]] = (
    *DAY_METRICS,
    "in",
    "out",
    *dict.fromkeys(segment for segments in PRESET.values() for segment in segments),
)
_CODES: Final = {token: str(n) for n, token in enumerate(TOKENS)}
_ESCAPE: Final = "~"
_SEPARATORS: Final = re.compile("([:>])")


def _is_code(token: str) -> bool:
    return token.isascii() and token.isdigit()


def _token(token: str) -> str:
    code = _CODES.get(token)
    if code is not None:
        return code
    if _is_code(token) or token.startswith(_ESCAPE):  # would read as a code, or as escaped
        return _ESCAPE + token
    return token


def _name(token: str) -> str:
    if _is_code(token):
        return TOKENS[int(token)]
    if token.startswith(_ESCAPE):
        return token[1:]
    return token


@lru_cache(maxsize=16384)
def encode(name: str) -> str:
    """The stored form of a field name without its weekday (`need_attention>at_risk` -> `14>9`)."""
    parts = _SEPARATORS.split(name)
    parts[::2] = [_token(t) for t in parts[::2]]
    return "".join(parts)


@lru_cache(maxsize=16384)
def decode(stored: str) -> str:
    """The name `encode` coded (`14>9` -> `need_attention>at_risk`); a code out of the table raises
    ValueError (a hash of another format, never read as a wrong name)."""
    parts = _SEPARATORS.split(stored)
    try:
        parts[::2] = [_name(t) for t in parts[::2]]
    except IndexError:
        raise ValueError(f"day counter field {stored!r} has a code this segstream does not know") from None
    return "".join(parts)
