"""The why of each current segment, derived from the state on read (the stored history keeps none)."""

from __future__ import annotations

from segmentation import CustomerState
from segmentation.explanation import current_why
from tests.unit.seg_helpers import DEFAULT, day, definitions_with, ev, purchase, run


def test_each_current_segment_has_the_why_its_last_move_published() -> None:
    """Every grid moved by the last event (at the clock) gets back the why that move was published with."""
    state, moves = run([purchase(day(0)), ev("app_session", day(3)), purchase(day(5), "80.00")])
    last = {t.grid: t for t in moves}
    why = current_why(state, DEFAULT)
    segments = {g for g in DEFAULT.grid_segments if (last[g].to_segment if g in last else None)}
    assert set(why) == segments  # every grid with a segment, audiences included
    assert any(g.startswith("audience:") for g in why)
    at_clock = {g: dict(t.why) for g, t in last.items() if t.effective_at == state.clock}
    assert at_clock and {g: why[g] for g in at_clock} == at_clock


def test_no_why_without_a_clock_or_under_other_definitions() -> None:
    assert current_why(CustomerState.new("c1"), DEFAULT) == {}
    state, _ = run([purchase(day(0))])
    other = definitions_with(audiences={"big": "monetary > 1"})
    assert other.version != DEFAULT.version and current_why(state, other) == {}


def test_a_grid_without_a_segment_has_no_why() -> None:
    """Under definitions that drop a grid's segment (none yet, an audience not evaluated): no why for it."""
    state, _ = run([purchase(day(0))])
    blank = state._replace(seg_value="", audiences=tuple((name, "") for name, _ in state.audiences))
    why = current_why(blank, DEFAULT)
    assert "value" not in why and not any(g.startswith("audience:") for g in why)
    assert why == {g: w for g, w in current_why(state, DEFAULT).items() if g in why} and "lifecycle" in why
