"""Per-segment KPI counters of one batch, and each customer's KPI marker (hash field `_kpi`).

The counting rules are pure (`segmentation.kpi_tracking`); this module feeds them the batch's steps in log
order, adds their counts to the batch's `IndexDelta` (`d:<grid>` hashes, committed by the same fenced script
as the states) and writes each customer's marker into its hash with the rest of its write.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from datetime import date, datetime
from typing import Final, cast

import msgspec

from segmentation import CustomerState, Definitions, Transition
from segmentation.kpi_tracking import Money, Tracker, segments_of, track
from segmentation.state_codec import nul_free, with_nul
from streams.store.indexes import IndexDelta
from streams.store.port import CustomerWrite
from streams.store.preset_names import PRESET
from streams.store.stored_state import StoredFormatError

MARKER = "_kpi"
VERSION = b"\x01"  # the marker's format, its first byte (a marker of 8232a7b and before: msgpack, 0x94)
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder().decode
# Grid and segment names coded as their index in the default definitions' names, frozen with VERSION: the
# same table as the history's (`preset_names.PRESET`, frozen with its own version: changing it changes both
# formats, and tests/unit/test_kpi_marker.py pins it). A name outside it is written as itself.
_GRIDS: Final = tuple(PRESET)
_GRID_CODES: Final = {grid: n for n, grid in enumerate(_GRIDS)}
_SEGMENT_CODES: Final = {grid: {s: n for n, s in enumerate(segments)} for grid, segments in PRESET.items()}
_VERSION_TEXT: Final = VERSION.decode()


class MarkerFormatError(ValueError):
    """A `_kpi` marker of another format (an earlier or later segstream): rebuild with `segstream replay`."""


# every preset (grid, segment or None) pair and its codes, both ways: one lookup per pair on the hot path
_Codes = tuple[int | str, int | str | None]
_PAIRS: Final[dict[tuple[str, str | None], _Codes]] = {
    (grid, segment): (g, None if segment is None else _SEGMENT_CODES[grid][segment])
    for g, grid in enumerate(_GRIDS)
    for segment in (None, *PRESET[grid])
}
_NAMES: Final[dict[_Codes, tuple[str, str | None]]] = {codes: pair for pair, codes in _PAIRS.items()}


def _coded(grid: str, segment: str | None) -> _Codes:
    pair = _PAIRS.get((grid, segment))
    if pair is not None:
        return pair
    code = _SEGMENT_CODES.get(grid)
    seg = segment if code is None or segment is None else code.get(segment, segment)
    return _GRID_CODES.get(grid, grid), seg


def _named(grid: int | str, segment: int | str | None) -> tuple[str, str | None]:
    pair = _NAMES.get((grid, segment))
    if pair is not None:
        return pair
    name = _GRIDS[grid] if isinstance(grid, int) else grid
    return name, PRESET[name][segment] if isinstance(segment, int) else segment


def encode(tracker: Tracker) -> str:
    """`VERSION` + msgpack `[period, flags (1 bought, 2 fresh), [grid, segment at start, ...], [[day, grid,
    segment, ...], ...]]`, the entries grouped by day (proleptic ordinal): an event's transitions share one
    day; grids and segments coded (`_coded`: ~2 bytes a pair instead of ~15). msgpack without NUL
    (`state_codec.nul_free`), as text like the packed `state` (surrogateescape)."""
    days: dict[int, list[int | str | None]] = {}
    for grid, segment, day in tracker.pending:
        days.setdefault(day.toordinal(), []).extend(_coded(grid, segment))
    flags = (1 if tracker.bought else 0) | (2 if tracker.fresh else 0)
    start = [x for grid, segment in tracker.start for x in _coded(grid, segment)]
    value = [tracker.period, flags, start, [[d, *e] for d, e in days.items()]]
    return (VERSION + nul_free(_pack(value))).decode("utf-8", "surrogateescape")


def check(text: str | None) -> None:
    """Raise `MarkerFormatError` (one line, the fix in it) for a marker this code does not write."""
    if text and not text.startswith(_VERSION_TEXT):
        older = text[0] == chr(0xDC94)  # msgpack array of 4 (0x94) as surrogateescape; mypyc: no literal
        which = "was written by an earlier segstream" if older else "is of an unknown format"
        raise MarkerFormatError(
            f"customer KPI marker {MARKER!r} {which}: rebuild the namespace with `segstream replay`"
        )


def check_stored(row: Mapping[str, str], namespace: str) -> None:
    """A loaded customer hash whose marker this code cannot continue: `StoredFormatError` naming the
    namespace (the worker stops with it, the CLI exits 3), before anything is applied or written."""
    try:
        check(row.get(MARKER))
    except MarkerFormatError as exc:
        raise StoredFormatError(f"namespace {namespace!r}: {exc}") from None


def decode(text: str | None) -> Tracker:
    if not text:
        return Tracker()
    check(text)
    raw = with_nul(text.encode("utf-8", "surrogateescape")[1:])
    period, flags, start, groups = _unpack(raw)
    pending = []
    for day, *entries in groups:
        when = date.fromordinal(day)
        for i in range(0, len(entries), 2):
            grid, segment = _named(entries[i], entries[i + 1])
            if segment is None:  # pending entries are segments entered
                raise ValueError(f"customer KPI marker {MARKER!r} is damaged")
            pending.append((grid, segment, when))
    return Tracker(
        period,
        tuple(_named(start[i], start[i + 1]) for i in range(0, len(start), 2)),
        bool(flags & 1),
        tuple(pending),
        bool(flags & 2),
    )


class KpiCounting:
    """One batch's counting: `step` per event or sweep in log order, then `finish` per customer write."""

    def __init__(
        self,
        definitions: Definitions,
        index: IndexDelta,
        stored: Mapping[str, tuple[CustomerState, Mapping[str, str]]],
    ):
        """`stored`: customer -> (state, mapping) the batch starts from (the mapping's `_kpi` is the marker to
        continue)."""
        self.config = definitions.kpis
        self.index = index
        self.stored = stored
        self.trackers: dict[str, Tracker] = {}
        index.crosstabs = self.config.crosstabs

    def step(
        self,
        before: CustomerState,
        after: CustomerState,
        transitions: Sequence[Transition],
        cause: str | None = None,
        kind: str | None = None,
    ) -> None:
        """One applied event (`cause` its id, `kind` its type) or one sweep (`cause` None) of a customer."""
        money = _money(before, after, kind)
        if money is None and not transitions:
            return
        cid = before.customer_id
        tracker = self.trackers.get(cid)
        if tracker is None:
            known = self.stored.get(cid)
            tracker = decode(known[1].get(MARKER) if known is not None else None)
        erasure = kind == "customer_erased"
        self.trackers[cid], _ = track(
            tracker, segments_of(before), transitions, money, cause, self.config, self.index.daily, erasure
        )

    def finish(self, write: CustomerWrite, mapping: dict[str, str]) -> CustomerWrite:
        """The customer's write with its marker (and `mapping`, what the cache keeps, with it too)."""
        tracker = self.trackers.get(write.customer_id)
        known = self.stored.get(write.customer_id)
        row = known[1] if known is not None else None
        if write.delete:
            return write
        if tracker is None:  # no step this batch: the cached mapping keeps the stored marker
            if row is not None and MARKER in row:
                mapping[MARKER] = row[MARKER]
            return write
        text = encode(tracker)
        mapping[MARKER] = text
        if row is not None and row.get(MARKER) == text:
            return write
        cast(MutableMapping[str, str], write.set_fields)[MARKER] = text  # a write's own dict (`write_for`)
        return write


def _money(before: CustomerState, after: CustomerState, kind: str | None) -> Money | None:
    """The purchase or refund the event applied (none for a duplicate, which changes nothing)."""
    if kind == "purchase" and after.orders != before.orders:
        return Money(_at(after), 1, after.gross_minor - before.gross_minor)
    if kind == "refund" and after.refunds != before.refunds:
        return Money(_at(after), 0, before.refunded_minor - after.refunded_minor)
    return None


def _at(state: CustomerState) -> datetime:
    assert state.clock is not None  # an applied event always sets the clock
    return state.clock
