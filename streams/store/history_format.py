"""A customer's transition history, coded into the `history` field of its hash (storage format 2).

One field of the customer's own hash (no key of its own): written by the same HSET as the state in the same
fenced commit, and gone with the hash when an erasure deletes it. Each entry keeps exactly what recomputes
the transition's id (`segmentation.transition.transition_key`): grid, from, to, instant (integer µs) and the
cause as hashed; no `why` (the reader derives the why of each grid's *current* segment from the state, and
every transition's full why is on the transitions topic).

The coded text uses characters 0x01-0x7f only, names aside (definitions and events refuse control
characters); a number costs ~5.6 bits per character. It is stored compressed (`COMPRESSED`: zstd with a
frozen dictionary trained on generated histories, `segmentation.compressed`, escaped and held as text like
the packed state): a history's layout, codes and cause shapes repeat across customers. Appending decompresses,
appends as below and compresses (~3 µs); a field of plain `VERSION` text (up to 65f8a17) still reads.

Layout: `VERSION`, then four sections separated by RS (0x1e):
  meta      numbers: trimmed (0/1), entries kept, instant of the last group (zigzag µs)
  grids     names of grids missing from `PRESET`, separated by US (0x1f)
  segments  names of segments missing from their grid's preset, separated by US
  body      groups of the transitions one cause made at one instant, oldest first:
            time (zigzag delta to the group before: seconds * 2, or µs * 2 + 1), cause then US, then per
            transition: grid code * 2 + (1 if `from` follows), `to` code (0: none), [`from` code]; then GS
Numbers: streams/store/coded_numbers.py (base 48, characters 0x20-0x7f).
Codes: a grid's index in `PRESET` or, after it, in the grids section; a segment's 1 + its index in its grid's
preset or, after it, in the segments section. Appending reads the meta and name sections and the head of the
body's last group (an entry of the same instant and cause joins it: the code never depends on the batches),
never the whole body; over the cap the oldest go from the body's front (history_cap.py, trimmed set). Names
stay once added (even unused): they too depend on the transitions alone, never on where batches fell.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

import zstandard

from segmentation.compressed import Compressed
from segmentation.instants import iso, to_us
from segmentation.state_codec import nul_free, with_nul
from segmentation.transition import CAUSE_DEFINITIONS, CAUSE_TIME, Transition, id_cause, transition_key
from streams.store.coded_numbers import BASE, LAST, number, put, unzig, zig
from streams.store.history_cap import GS, US, dropped, put_time, time_of
from streams.store.preset_names import PRESET

FIELD: Final = "history"
VERSION: Final = "\x01"  # the coded text below; stored as itself up to 65f8a17, still read
COMPRESSED: Final = "\x02"  # what is stored: the coded text after VERSION, zstd with `DICTIONARY`, escaped
DICTIONARY: Final = "history.zdict"  # in this package; frozen with COMPRESSED
RS: Final = "\x1e"
_COMPRESSED: Final = COMPRESSED.encode()
_TIME: Final = "\x02"  # cause `time`
_DEFINITIONS: Final = "\x03"  # cause `definitions`, its version follows
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_PRESET_GRIDS: Final = tuple(PRESET)
_PRESET_CODES: Final = {grid: n for n, grid in enumerate(_PRESET_GRIDS)}
_PRESET_SEGMENTS: Final[dict[str, dict[str | None, int]]] = {
    grid: {None: 0, **{s: n + 1 for n, s in enumerate(segs)}} for grid, segs in PRESET.items()
}
_NONE: Final[dict[str | None, int]] = {None: 0}  # the codes of a grid outside the preset: none but `none`
_CODEC: Final = Compressed("streams.store", DICTIONARY)


class UnknownHistoryFormat(ValueError):
    """Another format version wrote the field (or it is no history): rebuild with `segstream replay`."""


class Entry(NamedTuple):
    """One kept transition, as coded: `cause` is the cause as the id hashes it (`id_cause`)."""

    grid: str
    from_segment: str | None
    to_segment: str | None
    at_us: int
    key_cause: str

    @property
    def effective_at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.at_us)

    @property
    def cause(self) -> str:
        """The cause as published: an event id, `time` or `definitions`."""
        if self.key_cause.startswith(f"{CAUSE_DEFINITIONS}@"):
            return CAUSE_DEFINITIONS
        return self.key_cause

    def transition_id(self, customer_id: str) -> str:
        """The id the transition was published with (the same hash over the same fields)."""
        f, t = self.from_segment, self.to_segment
        return transition_key(customer_id, self.grid, f, t, iso(self.effective_at), self.key_cause)


def appended(blob: str | None, transitions: Sequence[Transition], cap: int) -> str:
    """`blob` (None: no history yet) with `transitions` (one customer's, oldest first) added, at most `cap`
    entries kept."""
    return stored(appended_text(plain(blob) if blob else None, transitions, cap))


def appended_text(text: str | None, transitions: Sequence[Transition], cap: int) -> str:
    """`appended` on the coded text (`VERSION` first), uncompressed."""
    if not text:
        return _coded(0, 0, 0, [], [], "", _rows(transitions), cap)
    trimmed, count, last_us, grids, segments, body = _parts(text)
    return _coded(trimmed, count, last_us, grids, segments, body, _rows(transitions), cap)


def encode(entries: Sequence[Entry], trimmed: bool) -> str:
    """The blob of `entries` (oldest first) from scratch."""
    return stored(_coded(int(trimmed), 0, 0, [], [], "", entries, len(entries)))


def stored(text: str) -> str:
    """The coded text as the field stores it: compressed (~45 % of it), as text like the packed state."""
    return packed(text).decode("utf-8", "surrogateescape")


def packed(text: str) -> bytes:
    """`stored` as bytes, what the write path sends (never made text)."""
    return _COMPRESSED + nul_free(_CODEC.pack(text[1:].encode("utf-8")))


def plain(blob: str) -> str:
    """The coded text (VERSION first) of a stored field, compressed or not."""
    if blob[:1] != COMPRESSED:
        return blob
    try:
        raw = _CODEC.unpack(with_nul(blob[1:].encode("utf-8", "surrogateescape")))
        return VERSION + raw.decode("utf-8")
    except (zstandard.ZstdError, ValueError) as exc:  # UnicodeError is a ValueError
        raise UnknownHistoryFormat(f"history: damaged compressed value: {exc}") from None


def decode(blob: str) -> tuple[list[Entry], bool]:
    """The kept entries, oldest first, and whether older ones were dropped."""
    trimmed, count, _, grids, segments, body = _parts(plain(blob))
    grid_names = [*_PRESET_GRIDS, *grids]
    names_of: dict[str, tuple[str | None, ...]] = {}
    entries: list[Entry] = []
    i, end, at = 0, len(body), 0
    try:
        while i < end:
            delta, i = number(body, i)
            at += time_of(delta)
            stop = body.index(US, i)
            cause = _cause_text(body[i:stop])
            i = stop + 1
            while body[i] != GS:
                code, i = number(body, i)
                grid = grid_names[code >> 1]
                names = names_of.get(grid)
                if names is None:
                    names = names_of[grid] = (None, *PRESET.get(grid, ()), *segments)
                to_code, i = number(body, i)
                from_segment = None
                if code & 1:
                    from_code, i = number(body, i)
                    from_segment = names[from_code]
                entries.append(Entry(grid, from_segment, names[to_code], at, cause))
            i += 1
    except (IndexError, ValueError) as exc:
        raise UnknownHistoryFormat(f"unreadable history body at character {i}: {exc}") from None
    if len(entries) != count:
        raise UnknownHistoryFormat(f"history holds {len(entries)} entries, its header says {count}")
    return entries, bool(trimmed)


def is_trimmed(blob: str | None) -> bool:
    return blob is not None and bool(_parts(plain(blob))[0])


# -- coding -------------------------------------------------------------------------------------------------
def entry_of(t: Transition) -> Entry:
    cause = id_cause(t.cause, t.definitions_version, t.definitions_change)
    return Entry(t.grid, t.from_segment, t.to_segment, to_us(t.effective_at), cause)


def _coded(
    trimmed: int,
    count: int,
    last_us: int,
    grids: list[str],
    segments: list[str],
    body: str,
    entries: Iterable[tuple[str, str | None, str | None, int, str]],
    cap: int,
) -> str:
    """The blob of the given sections with `entries` appended, grouped by instant and cause (an entry of the
    body's last group joins it, so the code does not depend on how the entries were batched), the oldest
    dropped beyond `cap`."""
    out: list[str] = [body]
    add = out.append
    last_digit = LAST
    grid_codes = {name: n for n, name in enumerate(grids, len(_PRESET_GRIDS))}
    custom = {name: n for n, name in enumerate(segments)}
    group_at, group_cause = None, None
    if body:
        try:
            _, i = number(body, body.rfind(GS, 0, len(body) - 1) + 1)
            group_at, group_cause = last_us, _cause_text(body[i : body.index(US, i)])
        except (IndexError, ValueError) as exc:
            raise UnknownHistoryFormat(f"unreadable last group of the history: {exc}") from None
    inside = False  # `out` ends inside a group
    for grid, from_segment, to_segment, at_us, key_cause in entries:
        if at_us != group_at or key_cause != group_cause:
            if inside:
                add(GS)
            put_time(out, at_us - last_us)
            add(_cause_code(key_cause))
            add(US)
            group_at, group_cause, last_us, inside = at_us, key_cause, at_us, True
        elif not inside:  # the body's last group goes on
            out[0], inside = body[:-1], True
        count += 1
        code = _PRESET_CODES.get(grid)
        if code is None:
            code = grid_codes.get(grid)
            if code is None:
                code = grid_codes[grid] = len(_PRESET_GRIDS) + len(grids)
                grids.append(_name(grid))
        known = _PRESET_SEGMENTS.get(grid, _NONE)
        to_code = known.get(to_segment)
        if to_code is None:  # every grid codes none (0): a segment name outside the preset
            to_code = _segment(str(to_segment), known, custom, segments)
        if from_segment is None:
            code <<= 1
        else:
            code = code << 1 | 1
        add(last_digit[code]) if code < BASE else put(out, code)
        add(last_digit[to_code]) if to_code < BASE else put(out, to_code)
        if from_segment is not None:
            from_code = known.get(from_segment)
            if from_code is None:
                from_code = _segment(from_segment, known, custom, segments)
            add(last_digit[from_code]) if from_code < BASE else put(out, from_code)
    if inside:
        add(GS)
    body = "".join(out)
    if count > cap:
        try:
            body = dropped(body, count - cap)
        except (IndexError, ValueError) as exc:
            raise UnknownHistoryFormat(f"unreadable history body: {exc}") from None
        count, trimmed = cap, 1
    meta: list[str] = []
    put(meta, trimmed)
    put(meta, count)
    put(meta, zig(last_us))
    return VERSION + "".join(meta) + RS + US.join(grids) + RS + US.join(segments) + RS + body


def _rows(transitions: Iterable[Transition]) -> Iterator[tuple[str, str | None, str | None, int, str]]:
    """Each transition as an entry's fields (an event's moves share one instant: converted once)."""
    at: datetime | None = None
    us = 0
    for t in transitions:
        if t.effective_at is not at:
            at = t.effective_at
            us = to_us(at)
        cause = t.cause
        if cause == CAUSE_DEFINITIONS:
            cause = id_cause(cause, t.definitions_version, t.definitions_change)
        yield t.grid, t.from_segment, t.to_segment, us, cause


def _segment(name: str, preset: dict[str | None, int], custom: dict[str, int], segments: list[str]) -> int:
    """A segment missing from its grid's preset: its code from the customer's own names (added if new)."""
    index = custom.get(name)
    if index is None:
        index = custom[name] = len(segments)
        segments.append(_name(name))
    return len(preset) + index  # `preset` counts none (0)


def _name(name: str) -> str:
    if any(ord(c) < 0x20 for c in name):
        raise ValueError(f"a grid or segment name holds a control character: {name!r}")
    return name


def _cause_code(key_cause: str) -> str:
    if key_cause == CAUSE_TIME:
        return _TIME
    if key_cause.startswith(f"{CAUSE_DEFINITIONS}@"):
        return _DEFINITIONS + key_cause[len(CAUSE_DEFINITIONS) + 1 :]
    if US in key_cause or RS in key_cause or key_cause[:1] in (_TIME, _DEFINITIONS):
        raise ValueError(f"a cause holds a control character: {key_cause!r}")
    return key_cause


def _cause_text(code: str) -> str:
    if code == _TIME:
        return CAUSE_TIME
    if code[:1] == _DEFINITIONS:
        return f"{CAUSE_DEFINITIONS}@{code[1:]}"
    return code


def _parts(blob: str) -> tuple[int, int, int, list[str], list[str], str]:
    if blob[:1] != VERSION:
        found = f"version byte {ord(blob[0]):#04x}" if blob else "an empty field"
        raise UnknownHistoryFormat(f"history: {found}, this reader knows {ord(VERSION):#04x}")
    sections = blob[1:].split(RS, 3)
    if len(sections) != 4:
        raise UnknownHistoryFormat("history: sections missing")
    meta, grids, segments, body = sections
    try:
        trimmed, i = number(meta, 0)
        count, i = number(meta, i)
        last, i = number(meta, i)
    except (IndexError, ValueError) as exc:
        raise UnknownHistoryFormat(f"history: unreadable header: {exc}") from None
    listed = [names.split(US) if names else [] for names in (grids, segments)]
    return trimmed, count, unzig(last), listed[0], listed[1], body
