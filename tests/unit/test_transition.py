"""Transition ids and their JSON form."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields
from datetime import timedelta, timezone
from inspect import isfunction
from types import MappingProxyType

import pytest

from segmentation import Transition
from segmentation.instants import iso
from segmentation.transition import NO_WHY, new_transition, transition_id, transition_key
from streams.topics.envelope import transition_event
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


@pytest.mark.parametrize("change", [1, 2, 5])
def test_a_definitions_change_publishes_the_number_its_id_hashes(change: int) -> None:
    """From a customer's second definitions change on, the id hashes `definitions@<version>#<n>`: the
    published form carries n, so a consumer recomputes the id from the record alone."""
    moved = Transition.create("c1", "rfm", "new", "loyal", day(9), "definitions", "v2", {"rule": "x"}, change)
    data = moved.to_dict()
    assert data["definitions_change"] == change
    recomputed = transition_id(
        "c1", "rfm", "new", "loyal", day(9), "definitions", str(data["definitions_version"]), change
    )
    assert recomputed == data["id"]


def test_the_hot_path_constructor_builds_the_same_transition() -> None:
    """`new_transition` fills the slots itself: valid only while the dataclass init just assigns fields."""
    assert not hasattr(Transition, "__post_init__")
    assert [f.name for f in fields(Transition)] == [
        "id", "customer_id", "grid", "from_segment", "to_segment", "effective_at", "cause",
        "definitions_version", "why", "definitions_change",
    ]  # fmt: skip
    args = ("k", "c1", "rfm", None, "new", day(3), "definitions", "v1", MappingProxyType({"rule": "r"}), 2)
    fast, slow = new_transition(*args), Transition(*args)
    assert type(fast) is Transition
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert [getattr(fast, f.name) for f in fields(Transition)] == list(args)


def test_a_transition_stays_frozen_and_its_constructor_is_compiled_with_the_core() -> None:
    """The written-out `__init__` keeps the dataclass frozen; compiled, it is native code (the generated one
    ran interpreted, ~1.2 µs a transition): a `Transition` that went back to a plain frozen dataclass
    fails here on the compiled core."""
    t = Transition.create("c1", "rfm", None, "new", day(0), "e1", "v1", {"rule": "x"})
    with pytest.raises(FrozenInstanceError):
        t.grid = "lifecycle"  # type: ignore[misc]
    assert isfunction(Transition.__init__) is not hasattr(Transition, "__mypyc_attrs__")


def test_transition_key_is_the_id_over_the_instant_text() -> None:
    at = day(1, seconds=0.5)
    assert transition_key("c1", "rfm", None, "new", iso(at), "e1") == transition_id(
        "c1", "rfm", None, "new", at, "e1"
    )


def test_a_transition_applied_without_explain_is_never_published() -> None:
    """Its why was skipped (explain=False): publishing it would put an empty why on the topic."""
    quiet = new_transition("k", "c1", "rfm", None, "new", day(0), "e1", "v1", NO_WHY, 0)
    with pytest.raises(ValueError, match="has no why"):
        transition_event(quiet)
    assert transition_event(Transition.create("c1", "rfm", None, "new", day(0), "e1", "v1", {"rule": "x"}))
