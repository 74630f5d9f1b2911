"""Day counters kept per ISO week: one hash per grid, partition and week (`d:`, `f:`, `t:<grid>:<week>`).

Why weeks: Redis keeps a hash as a compact listpack up to `hash-max-listpack-entries` (512) fields and as a
hashtable (~79 bytes a field instead of ~25) beyond. One hash per grid for all days grows to thousands of
fields; a week of a saturated `d:` hash holds 12 segments x 4 day metrics x 7 days = 336 fields, `f:` 168
(a half-month would hold 768 and 384). The day is named by its ISO weekday (`1`..`7`) inside the week's key,
so a field is `<segment>:<metric>:<weekday>` (`d:`), `<segment>:in|out:<weekday>` (`f:`) or
`<from>><to>:<weekday>` (`t:`), its names coded (`day_names`: `potential_loyalist:revenue:3` is stored as
three characters); readers name it back, with the day (`day_field`). The retention-period
counters (`<segment>:retained:<period>` ...) stay in keys of their own, one per grid, partition and year
(`r:<grid>:<YYYY>`: 12 segments x 3 metrics x 12 months = 432 fields), and the partition's `w` set lists
the weeks that hold counters, so a reader knows which keys exist without a scan.

A namespace written before (`d:<grid>` for all days, or per week with the names in full or in decimal codes,
or customer hashes whose segments are `segment:<grid>` fields) is refused by readers and workers, naming the
fix: the partition meta field FORMAT_FIELD says how the partition's day counters and customer fields are
kept (FORMAT); a partition that has committed (`offset` set) without it, or with another value, was written
by an earlier segstream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from functools import lru_cache
from typing import Any, Final

from redis.asyncio import Redis

from streams.store.day_names import field, named, period_named
from streams.store.keys import KeySpace
from streams.store.replies import text
from streams.store.stored_state import StoredFormatError

FORMAT_FIELD: Final = "days"  # partition meta field: how its day counters (and customer fields) are kept
# per ISO week, names coded short (`day_names`), each grid's segment under the grid's name in the customer
# hashes (`state_mapping`), day flows derived from the day moves (`flows_of_moves`: no `f:` keys), due times
# in ordinal chunks (`due_index`); refused: "week" (names in full), "week-coded" (decimal codes), "week-short"
# (customer fields `segment:<grid>`), "week-short/grid-named" (day flows kept in `f:` keys beside the moves),
# "week-short/grid-named/moves" (a `due` sorted set of customer ids, which this one reads as chunk numbers),
# "week-short/grid-named/moves/due-chunks" (retention counters `r:` named in full, `period_field`)
FORMAT: Final = "week-short/grid-named/moves/due-chunks/periods-coded"


EARLIER: Final = frozenset(  # the formats of earlier releases (above)
    {
        "week",
        "week-coded",
        "week-short",
        "week-short/grid-named",
        "week-short/grid-named/moves",
        "week-short/grid-named/moves/due-chunks",
    }
)


def older_days(namespace: str, kept: str | None = None) -> StoredFormatError:
    """What a reader or a worker raises on a namespace whose day counters are of another segstream: an
    earlier one (no format, or one it wrote), or one this one does not know (a later release's)."""
    if kept is None or kept in EARLIER:
        return StoredFormatError(
            f"namespace {namespace!r} keeps its day counters or customer fields in an older format (written "
            "by an earlier segstream): rebuild it with `segstream replay`"
        )
    return StoredFormatError(
        f"namespace {namespace!r} keeps its day counters or customer fields in format {kept!r}, which this "
        f"segstream does not know (it reads {FORMAT!r}; a later release wrote it?): read it with the "
        "segstream that wrote it, or rebuild it with this one (`segstream replay`)"
    )


def check_format(namespace: str, offset: object, kept: object) -> None:
    """Raise unless the partition's day counters are kept as this segstream keeps them (`kept`: its meta's
    FORMAT_FIELD, bytes or text) or it has never committed (`offset` None)."""
    text = kept.decode("utf-8", "replace") if isinstance(kept, bytes) else kept
    if text != FORMAT and (offset is not None or text is not None):
        raise older_days(namespace, None if text is None else str(text))


async def check_formats(client: Redis, keys: KeySpace, partitions: Iterable[int]) -> None:
    """`check_format` of every partition, in one pipeline: what a reader checks before it answers anything
    from the namespace (counts and crossings of an older one read as zeros, not as a refusal)."""
    async with client.pipeline(transaction=False) as pipe:
        for p in partitions:
            pipe.hmget(keys.partition_meta(p), ["offset", FORMAT_FIELD])
        rows = await pipe.execute()
    for offset, kept in rows:
        check_format(keys.namespace, offset, kept)


async def week_rows(
    client: Redis, key_of: Callable[[int, str], str], partitions: Iterable[int], weeks: Sequence[str]
) -> list[tuple[str, dict[Any, Any]]]:
    """HGETALL of each partition's key (`key_of(partition, week)`) of each week, in one pipeline: (week, the
    reply as it came, fields as stored)."""
    names = [(key_of(p, week), week) for p in partitions for week in weeks]
    async with client.pipeline(transaction=False) as pipe:
        for name, _ in names:
            pipe.hgetall(name)
        replies = await pipe.execute()
    return [(week, row) for (_, week), row in zip(names, replies, strict=True)]


async def known_weeks(client: Redis, keys: KeySpace, partitions: Iterable[int]) -> set[str]:
    """The weeks holding day counters in any of the partitions (their `w` sets), read in one pipeline with
    each partition's format (`check_format`: an older namespace is refused, never answered with zeros)."""
    parts = list(partitions)
    async with client.pipeline(transaction=False) as pipe:
        for p in parts:
            pipe.hmget(keys.partition_meta(p), ["offset", FORMAT_FIELD])
            pipe.smembers(keys.weeks(p))
        rows = await pipe.execute()
    weeks: set[str] = set()
    for (offset, kept), names in zip(rows[::2], rows[1::2], strict=True):
        check_format(keys.namespace, offset, kept)
        weeks.update(name.decode() if isinstance(name, bytes) else name for name in names)
    return weeks


@lru_cache(maxsize=8192)
def week_of(day: str) -> tuple[str, str]:
    """`2026-03-05` -> (`2026-W10`, `4`): the ISO week holding the UTC day, and its weekday."""
    year, week, weekday = date.fromisoformat(day).isocalendar()
    return f"{year:04d}-W{week:02d}", str(weekday)  # four digits, as isoformat


@lru_cache(maxsize=65536)
def day_of(week: str, weekday: str) -> str:
    """The ISO day named by a week and a weekday (`week_of` reversed)."""
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), int(weekday)).isoformat()


def stored_field(name: str, weekday: str) -> str:
    """The stored field of a day counter: (`new:in`, `4`) -> `(%4` (`day_names`)."""
    return field(name, weekday)


def day_field(week: str, stored: str) -> str:
    """A field of a week's key as it is read: `(%4` of `2026-W10` -> `new:in:2026-03-05`."""
    name, weekday = named(stored)
    return f"{name}:{day_of(week, weekday)}"


def weeks_of_range(known: set[str], first: date | None, last: date | None) -> list[str]:
    """The weeks to read for the days first..last (None: unbounded), oldest first: those holding a day of the
    range and holding counters (`known`, from the partitions' `w` sets)."""
    low = week_of(first.isoformat())[0] if first is not None else ""
    high = week_of(last.isoformat())[0] if last is not None else "9999-W99"
    return sorted(w for w in known if low <= w <= high)


def period_years(weeks: Iterable[str]) -> list[str]:
    """The years whose retention periods (`r:<grid>:<YYYY>`) can hold counters, given the weeks that hold
    day counters: a period is counted at a purchase, which is a day counter too, in an ISO week whose year
    may be one less or one more than the calendar year of the day (late December, early January)."""
    years = {int(week[:4]) for week in weeks}
    return [f"{y:04d}" for y in sorted({y + k for y in years for k in (-1, 0, 1)}) if y > 0]


def periods_of_range(years: Iterable[str], first: date | None, last: date | None) -> list[str]:
    """Of `years` (`period_years`), those that can hold a retention period lying inside first..last."""
    low = f"{first.year - 1:04d}" if first is not None else ""
    high = f"{last.year + 1:04d}" if last is not None else "9999"
    return [y for y in years if low <= y <= high]


def by_grid(
    weeks: Mapping[tuple[str, str], list[tuple[str, int]]],
    years: Mapping[tuple[str, str], list[tuple[str, int]]] | None = None,
) -> dict[str, list[tuple[str, int]]]:
    """The week keys' fields (and the years' period fields) as one hash per grid with the days named (what
    `read_indexes` shows)."""
    out: dict[str, list[tuple[str, int]]] = {}
    for (grid, week), pairs in weeks.items():
        out.setdefault(grid, []).extend((day_field(week, name), d) for name, d in pairs)
    for (grid, year), pairs in (years or {}).items():
        out.setdefault(grid, []).extend((period_named(name, year), d) for name, d in pairs)
    return out


def split_days(fields: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Fields named with their day (`<name>:<YYYY-MM-DD>`, as `read_indexes` shows them) as they are stored:
    ISO week -> {`<coded name>:<weekday>`: value} (for seeding benchmarks and tests)."""
    out: dict[str, dict[str, int]] = {}
    for name, value in fields.items():
        week, weekday = week_of(name[-10:])
        out.setdefault(week, {})[stored_field(name[:-11], weekday)] = value
    return out


def flows_of_week_rows(rows: Iterable[tuple[str, Mapping[Any, Any]]]) -> dict[str, dict[str, dict[str, int]]]:
    """Day (UTC) -> segment -> {"in": entries, "out": exits}, from `t:` week keys as read: (week, its stored
    fields and counts), any number of rows per week (one per partition). What `flows_of_moves` gives, summed
    and nested, without naming every field by its day first: the rows are summed by stored name, and each
    distinct name (a year of an 11-segment grid is ~50k fields per partition, ~1,000 names) decoded once."""
    pairs: dict[Any, tuple[str, str, str]] = {}
    out: dict[str, dict[str, dict[str, int]]] = {}
    for week, counts in _by_stored_name(rows).items():
        for stored, count in counts.items():
            if not count:  # the commit script deletes a counter that comes to zero: as if absent
                continue
            pair = pairs.get(stored)
            if pair is None:
                name, weekday = named(text(stored))
                before, _, after = name.partition(">")
                pair = pairs[stored] = (before, after, weekday)
            before, after, weekday = pair
            _count_move(out.setdefault(day_of(week, weekday), {}), before, after, count)
    return {day: cells for day, cells in out.items() if cells}


def _count_move(cells: dict[str, dict[str, int]], before: str, after: str, count: int) -> None:
    """A day's `count` moves from `before` to `after` ('-': no segment): exits of one, entries of the other
    (each transition is one move, so the flows are exact)."""
    if before != "-":
        cells.setdefault(before, {"in": 0, "out": 0})["out"] += count
    if after != "-":
        cells.setdefault(after, {"in": 0, "out": 0})["in"] += count


def moves_of_week_rows(
    rows: Iterable[tuple[str, Mapping[Any, Any]]], first: str, last: str
) -> dict[str, int]:
    """`<from>><to>` -> the moves on the UTC days `first`..`last` (ISO dates, inclusive), from `t:` week keys
    as read (as `flows_of_week_rows`: summed by stored name first, each distinct name decoded once)."""
    names: dict[Any, tuple[str, str]] = {}
    out: dict[str, int] = {}
    for week, counts in _by_stored_name(rows).items():
        for stored, count in counts.items():
            known = names.get(stored)
            if known is None:
                known = names[stored] = named(text(stored))
            pair, weekday = known
            if first <= day_of(week, weekday) <= last:
                out[pair] = out.get(pair, 0) + count
    return out


def _by_stored_name(rows: Iterable[tuple[str, Mapping[Any, Any]]]) -> dict[str, dict[Any, int]]:
    """Week -> field as it came (bytes or text) -> count, summed over the rows (the partitions)."""
    summed: dict[str, dict[Any, int]] = {}
    for week, row in rows:
        counts = summed.setdefault(week, {})
        for k, v in row.items():
            counts[k] = counts.get(k, 0) + int(v)
    return summed


def flat_flows(flows: Mapping[str, Mapping[str, Mapping[str, int]]]) -> dict[str, int]:
    """Nested day flows named `<segment>:in|out:<day>`, zeros left out (as the counters never hold one)."""
    return {
        f"{segment}:{direction}:{day}": count
        for day, cells in flows.items()
        for segment, cell in cells.items()
        for direction, count in cell.items()
        if count
    }


def flows_of_moves(moves: Mapping[str, int]) -> dict[str, int]:
    """The day flows of day moves named by their day (`<from>><to>:<day>`, '-' for no segment): a segment's
    entries on a day (`<segment>:in:<day>`) are the moves into it, its exits (`<segment>:out:<day>`) those out
    of it. Exact, since each transition counts one move, so no flow is kept apart (`FORMAT`)."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for name, count in moves.items():
        pair, _, day = name.rpartition(":")
        before, _, after = pair.partition(">")
        _count_move(out.setdefault(day, {}), before, after, count)
    return flat_flows(out)
