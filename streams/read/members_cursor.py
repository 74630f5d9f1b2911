"""The cursor of a members walk: `<partition>:<position>[:<end>]`, handed back page after page."""

from __future__ import annotations

import re


def cursor_pattern(partitions: int) -> str:
    """A partition of the topic, a position (the next ordinal) and the partition's walk end
    (`membership.walk_end`), each of at most 19 ASCII digits. Declared as is in the OpenAPI document, so
    what it allows is served."""
    return "^(?:(?:" + "|".join(str(p) for p in range(partitions)) + "):[0-9]{1,19}(?::[0-9]{1,19})?)?$"


def parse_cursor(cursor: str | None, valid: re.Pattern[str]) -> tuple[int, int, int | None] | None:
    """(partition, position, end), or None for a malformed cursor. ASCII digits only (str.isdigit() also
    accepts '²', which int() refuses), within the limits; the end is absent from a cursor of an earlier
    version (its walk is then not bounded)."""
    if cursor is None or cursor == "":
        return 0, 0, None
    if not valid.fullmatch(cursor):
        return None
    head, _, rest = cursor.partition(":")
    tail, _, end = rest.partition(":")
    return int(head), int(tail), int(end) if end else None
