"""Why a walk stops (`members_walk.gone`): a namespace's first record is not called a drop or a rebuild.

A walk of a namespace nothing had recorded yet, stopped because its first worker recorded it meanwhile, said
the namespace "was dropped or built again" (fourth review of 7 December 2026)."""

from __future__ import annotations

import pytest

from streams.read.members_walk import gone
from streams.store.readable import standing_of

BARE = standing_of("spring", None, None, None, 0)
RECORDED = standing_of("spring", b"v3", b"4", b"a1b2", 0)


@pytest.mark.parametrize(
    ("before", "now", "says"),
    [
        (BARE, RECORDED, "was first recorded by a worker or replay while this walk ran"),
        (BARE, standing_of("spring", b"v3", b"4", b"a1b2", 1), "was dropped or built again"),  # and marked
        (BARE, standing_of("spring", None, None, None, 1), "was dropped or built again"),  # a drop began
        (RECORDED, BARE, "was dropped or built again"),  # dropped: its record went first
        (RECORDED, standing_of("spring", b"v3", b"4", b"c3d4", 0), "was dropped or built again"),  # rebuilt
        (RECORDED, standing_of("spring", b"v3", b"4", b"a1b2", 1), "was dropped or built again"),  # marked
        (standing_of("spring", None, b"4", None, 0), RECORDED, "was dropped or built again"),  # an old one
    ],
)
def test_the_reason_a_walk_stops_names_what_happened(before: str, now: str, says: str) -> None:
    assert says in gone("spring", before, now)
    assert "'spring'" in gone("spring", before, now)
