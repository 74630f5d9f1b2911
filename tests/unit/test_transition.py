"""Transition ids and their JSON form."""

from __future__ import annotations

from datetime import timedelta, timezone

from segmentation import Transition
from segmentation.transition import transition_id
from tests.unit.seg_helpers import day


def test_id_is_a_function_of_what_the_transition_is() -> None:
    base = transition_id("c1", "lifecycle", "new", "active", day(30), "time")
    assert base == transition_id("c1", "lifecycle", "new", "active", day(30), "time")
    assert len(base) == 32
    assert base != transition_id("c1", "lifecycle", "new", "active", day(30), "e1")
    assert base != transition_id("c1", "lifecycle", None, "active", day(30), "time")
    other_offset = day(30).astimezone(timezone(timedelta(hours=2)))
    assert base == transition_id("c1", "lifecycle", "new", "active", other_offset, "time")


def test_to_dict() -> None:
    transition = Transition.create("c1", "rfm", None, "new", day(0), "e1", "v1", {"rule": "x"})
    assert transition.to_dict() == {
        "id": transition_id("c1", "rfm", None, "new", day(0), "e1"),
        "customer_id": "c1",
        "grid": "rfm",
        "from_segment": None,
        "to_segment": "new",
        "effective_at": "2026-01-01T00:00:00+00:00",
        "cause": "e1",
        "definitions_version": "v1",
        "why": {"rule": "x"},
    }
    assert Transition.create("c1", "rfm", None, "new", day(0), "e1", "v1", transition.why).why == {
        "rule": "x"
    }
