"""The history's cap: its oldest entries dropped from the front of the coded body, the rest left as coded.

A customer who stays active sits at the cap on every write. Decoding its ~64 entries and coding them again
cost ~40 µs a write (47 with compression, against 7 now: `bench_customer_write.py`); skipping the dropped
entries' numbers and re-basing the first kept group's time costs about what the dropped entries take to
read. The body's grammar is history_format.py's.
"""

from __future__ import annotations

from typing import Final

from streams.store.coded_numbers import number, put, unzig, zig

US: Final = "\x1f"  # ends a group's cause
GS: Final = "\x1d"  # ends a group
SECOND: Final = 1_000_000


def time_of(code: int) -> int:
    """The µs a group's time code says (`put_time`'s inverse)."""
    return unzig(code >> 1) * (1 if code & 1 else SECOND)


def put_time(out: list[str], delta_us: int) -> None:
    """A group's time, `delta_us` after the group before it (the first: after 0): whole seconds when exact."""
    if delta_us % SECOND:
        put(out, zig(delta_us) << 1 | 1)
    else:
        put(out, zig(delta_us // SECOND) << 1)


def dropped(body: str, drop: int) -> str:
    """`body` without its first `drop` (> 0) entries, at least one kept. The first kept group's time is coded
    from 0, as if it had always been first, so the code is the one the kept entries alone would have: a
    replay and a live worker that reach the cap at other batches store the same bytes. IndexError or
    ValueError on a damaged body, or one holding no more than `drop` entries (its header said more)."""
    i, at, end = 0, 0, len(body)
    while i < end:
        delta, i = number(body, i)
        at += time_of(delta)
        cause = i
        i = first = body.index(US, i) + 1
        while body[i] != GS:
            if not drop:  # the group loses its first entries: its time and cause stay with the others
                out: list[str] = []
                put_time(out, at)
                return "".join(out) + body[cause:first] + body[i:]
            code, i = number(body, i)
            _, i = number(body, i)
            if code & 1:
                _, i = number(body, i)
            drop -= 1
        i += 1
        if not drop and i < end:  # a whole group went: the next one's time is coded from 0 now
            delta, after = number(body, i)
            out = []
            put_time(out, at + time_of(delta))
            return "".join(out) + body[after:]
    raise ValueError(f"{drop} entries to drop past the end of the body")
