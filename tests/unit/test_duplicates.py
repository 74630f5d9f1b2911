"""Duplicate detection keeps short keys: long event ids are remembered as a digest, still recognised."""

from __future__ import annotations

from segmentation import apply
from segmentation.duplicates import SHORT_ID, duplicate_key
from segmentation.state import ID_SEPARATOR, join_ids
from tests.unit.seg_helpers import DEFAULT, day, ev, purchase, run

UUID = "123e4567-e89b-12d3-a456-426614174000"


def test_short_ids_are_their_own_key_and_long_ids_a_fixed_12_character_digest() -> None:
    assert duplicate_key("e" * SHORT_ID) == "e" * SHORT_ID
    assert duplicate_key(UUID) == "72Z6KXNUTxzL"  # pinned: replays on any machine must agree
    assert len(duplicate_key("x" * 128)) == 12 and duplicate_key("a" * 12) != duplicate_key("b" * 12)
    assert len(duplicate_key("\ud800" * 20)) == 12  # a lone surrogate JSON can carry does not crash it


def test_a_long_id_delivered_twice_counts_once_and_costs_12_characters() -> None:
    state, _ = run([purchase(day(0), event_id=UUID)])
    assert state.recent_ids == ID_SEPARATOR + duplicate_key(UUID) + ID_SEPARATOR
    again = purchase(day(1), event_id=UUID)
    assert apply(state, again, DEFAULT).state is state
    assert state.orders == 1


def test_a_long_id_remembered_whole_by_an_older_version_is_still_a_duplicate() -> None:
    state, _ = run([purchase(day(0), event_id="first")])
    stored_before = state._replace(recent_ids=join_ids(("first", UUID)))  # as an older version wrote it
    assert apply(stored_before, purchase(day(1), event_id=UUID), DEFAULT).state is stored_before


def test_an_erasure_remembers_no_id_and_covers_itself_sent_again() -> None:
    """Not even the erasure's own id stays (it may hold the customer's); `erased_at` covers a resend."""
    state, _ = run([purchase(day(0)), ev("customer_erased", day(1), event_id=UUID)])
    assert (state.recent_ids, state.erased_at) == ("", day(1))
    assert apply(state, ev("customer_erased", day(1), event_id=UUID), DEFAULT).state is state
