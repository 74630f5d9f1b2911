"""Day counter field names coded: `potential_loyalist:revenue` on weekday 3 is stored as three characters.

A retention period's counter (`period_field`, in its year's `r:` key) is coded the same way: its segment as a
token, its metric as one letter and its period without the year: 5-9 characters instead of ~35 (~13 bytes a
customer on an order-history import).

Why: a week's `d:`, `f:` and `t:` hash is a listpack whose bytes are mostly its field names (a segment name,
a metric or direction, the weekday) beside small integer values; the names repeated in every partition and
week were ~70 % of the day counters' memory on an order-history import. A field has one of two forms:

- **short**, every field of the default definitions: `<A><B><weekday>`, three characters, for a name `A:B`
  (`<segment>:<metric>`, `<segment>:in|out`) or `A>B` (`<from>><to>`, `-` for none) whose two tokens are
  in `TOKENS`, each written as one character of `_ALPHABET`. The separator follows from B: a day metric or
  a direction (the first `_SIDE` tokens) comes after `:`, a segment after `>`. A field without `:` is short.
- **long**, any other name: cut into tokens at `:` and `>`, a token of `TOKENS` written as its index in
  decimal and any other as itself (custom segment names need no table of their own, so definitions may
  change freely; a token that would read as a code, all digits, or that starts with the escape `~` is
  written behind a `~`), then `:` and the weekday: `vip:revenue:3` is `vip:1:3`.

So any name comes back exactly: `named(field(n, w)) == (n, w)`. `TOKENS` and `_ALPHABET` are frozen with the
day counter format (`weeks.FORMAT`): a change needs a new format, since stored names would read differently.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from segmentation.kpi_figures import DAY_METRICS, PERIOD_METRICS
from streams.store.preset_names import PRESET

__all__ = ["TOKENS", "decode", "encode", "field", "named", "period_field", "period_named"]

# The day metrics and flow directions first (`_SIDE` of them: the tokens a `:` precedes), then the segments
# of the default definitions as the history codes them (preset_names.PRESET, frozen too), each name once,
# then `-` (a move's missing side). Frozen: see the module doc; tests/unit/test_day_names.py pins the table.
TOKENS: Final[tuple[str, ...]] = (
    *DAY_METRICS,
    "in",
    "out",
    *dict.fromkeys(segment for segments in PRESET.values() for segment in segments),
    "-",
)
_SIDE: Final = len(DAY_METRICS) + 2
_ALPHABET: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != ":")  # printable ASCII but `:`
_CODES: Final = {token: str(n) for n, token in enumerate(TOKENS)}
_CHARS: Final = {token: _ALPHABET[n] for n, token in enumerate(TOKENS)}
_SHORT: Final = {char: n for n, char in enumerate(_ALPHABET[: len(TOKENS)])}
_ESCAPE: Final = "~"
# a retention metric's letter in a period field (frozen with the day counter format, like `TOKENS`)
_PERIOD_CODES: Final = {metric: "abc"[n] for n, metric in enumerate(PERIOD_METRICS)}
_PERIOD_METRICS: Final = {code: metric for metric, code in _PERIOD_CODES.items()}
_SEPARATORS: Final = re.compile("([:>])")


@lru_cache(maxsize=16384)
def field(name: str, weekday: str) -> str:
    """The stored field of the counter `name` on `weekday` (`1`..`7`), in its short form when it has one."""
    parts = _SEPARATORS.split(name)
    if len(parts) == 3:
        a, separator, b = parts
        first, second = _CHARS.get(a), _CHARS.get(b)
        if first is not None and second is not None and (separator == ":") == (_SHORT[second] < _SIDE):
            return first + second + weekday
    return f"{encode(name)}:{weekday}"


@lru_cache(maxsize=16384)
def named(stored: str) -> tuple[str, str]:
    """The name and weekday `field` stored; a field this segstream cannot have written raises ValueError (a
    hash of another format, never read as a wrong name)."""
    if ":" in stored:
        return decode(stored[:-2]), stored[-1]
    a, b = _SHORT.get(stored[:1]), _SHORT.get(stored[1:2])
    if len(stored) != 3 or a is None or b is None:
        raise ValueError(f"day counter field {stored!r} has a code this segstream does not know")
    return f"{TOKENS[a]}{':' if b < _SIDE else '>'}{TOKENS[b]}", stored[2]


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


def encode(name: str) -> str:
    """The long form of a name, without its weekday (`need_attention>at_risk` -> `14>9`)."""
    parts = _SEPARATORS.split(name)
    parts[::2] = [_token(t) for t in parts[::2]]
    return "".join(parts)


def decode(stored: str) -> str:
    """The name `encode` coded (`14>9` -> `need_attention>at_risk`); a code out of the table raises
    ValueError."""
    parts = _SEPARATORS.split(stored)
    try:
        parts[::2] = [_name(t) for t in parts[::2]]
    except IndexError:
        raise ValueError(f"day counter field {stored!r} has a code this segstream does not know") from None
    return "".join(parts)


@lru_cache(maxsize=16384)
def period_field(segment: str, metric: str, period: str) -> str:
    """The stored field of a retention counter in its year's key (`r:<grid>:<year>`): the segment coded as a
    day counter's token, the metric one letter, the period without its year, which the key holds:
    (`potential_loyalist`, `cohort_revenue`, `2026-W10`) -> `15:cW10` (42 characters in full)."""
    return f"{encode(segment)}:{_PERIOD_CODES[metric]}{period[5:]}"


@lru_cache(maxsize=16384)
def period_named(stored: str, year: str) -> str:
    """`<segment>:<metric>:<period>` of a field `period_field` stored in `year`'s key; a field this
    segstream cannot have written raises ValueError."""
    head, _, tail = stored.rpartition(":")
    metric = _PERIOD_METRICS.get(tail[:1])
    if not head or metric is None:
        raise ValueError(f"retention counter field {stored!r} has a code this segstream does not know")
    return f"{decode(head)}:{metric}:{year}-{tail[1:]}"
