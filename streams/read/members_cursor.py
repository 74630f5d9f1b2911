"""The cursor of a members walk: `<partition>:<position>[:<end>][.<namespace tag>]`, handed back page after
page. The tag names the namespace the walk began in and its build (`readable.build_of`): its ordinals mean
other customers in any other namespace or build, so a page asked of another one (the active namespace
changed by `segstream promote` meanwhile, or built again under its name) is refused rather than listing some
members twice and others never."""

from __future__ import annotations

import hashlib
import re

TAG_LENGTH = 8  # hex digits of the namespace's tag


def cursor_pattern(partitions: int) -> str:
    """A partition of the topic, a position (the next ordinal) and the partition's walk end
    (`membership.walk_end`), each of at most 19 ASCII digits, and the namespace's tag. Declared as is in the
    OpenAPI document, so what it allows is served."""
    numbers = "(?:" + "|".join(str(p) for p in range(partitions)) + "):[0-9]{1,19}(?::[0-9]{1,19})?"
    return f"^(?:{numbers}(?:\\.[0-9a-f]{{{TAG_LENGTH}}})?)?$"


def namespace_tag(namespace: str) -> str:
    return hashlib.blake2b(
        namespace.encode("utf-8", "surrogateescape"), digest_size=TAG_LENGTH // 2
    ).hexdigest()


def parse_cursor(
    cursor: str | None, valid: re.Pattern[str]
) -> tuple[int, int, int | None, str | None] | None:
    """(partition, position, end, namespace tag), or None for a malformed cursor. ASCII digits only
    (str.isdigit() also accepts '²', which int() refuses), within the limits; the end and the tag are absent
    from a cursor of an earlier version (its walk is then not bounded, nor checked)."""
    if cursor is None or cursor == "":
        return 0, 0, None, None
    if not valid.fullmatch(cursor):
        return None
    numbers, _, tag = cursor.partition(".")
    head, _, rest = numbers.partition(":")
    tail, _, end = rest.partition(":")
    return int(head), int(tail), int(end) if end else None, tag or None


def cursor_text(partition: int, position: int, end: int | None, build: str) -> str:
    tail = "" if end is None else f":{end}"
    return f"{partition}:{position}{tail}.{namespace_tag(build)}"
