"""At its cap a history drops its oldest entries from the front of the coded body (history_cap.py): the same
bytes wherever the batches fell, every kept entry reading back exactly, and a history of preset names coded
as its kept entries alone would be (what a full re-code stored before)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.transition import Transition
from streams.store.history_format import (
    RS,
    VERSION,
    UnknownHistoryFormat,
    appended,
    appended_text,
    decode,
    encode,
    entry_of,
    is_trimmed,
    plain,
)
from streams.store.preset_names import PRESET

T0 = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
_SEGMENTS = {**{grid: (None, *segs) for grid, segs in PRESET.items()}, "loyalty": (None, "gold", "vip")}
_PRESET_VALUE = {"value": (*_SEGMENTS["value"], "platinum")}  # a preset grid with a segment of its own


@st.composite
def histories(draw: st.DrawFn, custom: bool) -> list[Transition]:
    """A customer's transitions, oldest first: events moving 1-4 grids at one instant, time mostly forward."""
    grids = {**_SEGMENTS, **_PRESET_VALUE} if custom else {g: s for g, s in _SEGMENTS.items() if g in PRESET}
    names = sorted(grids)
    out: list[Transition] = []
    at = T0
    for n in range(draw(st.integers(1, 25))):
        step = draw(st.sampled_from([0, 1, 7e-6, 86_400, -3_600]))
        at += timedelta(seconds=step)
        cause = draw(st.sampled_from(["time", "definitions", f"e{n}"]))
        for grid in draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True)):
            a, b = draw(st.sampled_from(grids[grid])), draw(st.sampled_from(grids[grid]))
            out.append(Transition.create("c9", grid, a, b, at, cause, "v7", {}))
    return out


def in_batches(ts: list[Transition], cuts: list[int], cap: int) -> str:
    text: str | None = None
    for start, end in zip([0, *sorted(cuts)], [*sorted(cuts), len(ts)], strict=True):
        text = appended_text(text, ts[start:end], cap)
    assert text is not None
    return text


@settings(max_examples=400, deadline=None)
@given(st.data(), st.booleans(), st.integers(1, 12))
def test_any_batching_stores_the_same_bytes_and_keeps_the_last_entries(
    data: st.DataObject, custom: bool, cap: int
) -> None:
    ts = data.draw(histories(custom))
    cuts = data.draw(st.lists(st.integers(0, len(ts)), max_size=6))
    one = appended_text(None, ts, cap)
    assert in_batches(ts, cuts, cap) == one  # a replay and a live worker store the same bytes
    entries, trimmed = decode(one)
    assert entries == [entry_of(t) for t in ts][-cap:]
    assert trimmed == (len(ts) > cap)
    kept = ts[-cap:]
    assert [e.transition_id("c9") for e in entries] == [t.id for t in kept]


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(1, 12))
def test_a_history_of_preset_names_is_coded_as_its_kept_entries_alone(data: st.DataObject, cap: int) -> None:
    """What a full re-code at the cap stored before (fields written then and now continue alike)."""
    ts = data.draw(histories(custom=False))
    blob = appended(None, ts, cap)
    assert blob == encode(decode(blob)[0], len(ts) > cap)


def test_a_name_outside_the_preset_stays_once_its_entries_are_dropped() -> None:
    """The names sections only grow: dropping them would make the code depend on where the cap was met."""
    ts = [Transition.create("c9", "loyalty", None, "gold", T0, "e1", "v7", {})]
    ts += [
        Transition.create("c9", "lifecycle", None, "new", T0 + timedelta(days=n), f"e{n + 2}", "v7", {})
        for n in range(3)
    ]
    blob = appended(None, ts, 2)
    assert is_trimmed(blob) and [e.grid for e in decode(blob)[0]] == ["lifecycle", "lifecycle"]
    assert plain(blob).split(RS)[1:3] == ["loyalty", "gold"]


def lifecycle(n: int) -> list[Transition]:
    return [
        Transition.create("c9", "lifecycle", None, "new", T0 + timedelta(days=d), f"e{d}", "v7", {})
        for d in range(n)
    ]


@pytest.mark.parametrize(
    "damaged",
    [
        VERSION + " *" + appended_text(None, lifecycle(3), 4)[3:],  # its header says 10 entries, its body 3
        VERSION + "  " + " " + RS + RS + RS + "P",  # a body cut inside its first number
        VERSION + " # " + RS + RS + RS + "\x7f!\x1d",  # a group with no cause
    ],
)
def test_a_damaged_history_at_the_cap_is_refused_not_stored(damaged: str) -> None:
    """The reader's error (rebuild with `segstream replay`), never a raw IndexError nor a field whose header
    no longer matches its body."""
    with pytest.raises(UnknownHistoryFormat):
        appended_text(damaged, lifecycle(6)[3:4], 4 if "e0" in damaged else 1)
