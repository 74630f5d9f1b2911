"""The memory of recent event ids: `remember` cuts before appending, and must equal append-then-trim."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation.state import ID_SEPARATOR, join_ids, remember, trim


def _reference(recent_ids: str, event_id: str, limit: int) -> str:
    """The definition: append the id, then forget the oldest ids beyond `limit`."""
    return trim((recent_ids or ID_SEPARATOR) + event_id + ID_SEPARATOR, limit)


_IDS = st.text("ab\x1f", max_size=4)


@given(
    ids=st.lists(_IDS.filter(lambda i: ID_SEPARATOR not in i), max_size=8), new=_IDS, limit=st.integers(0, 9)
)
def test_remember_is_append_then_trim(ids: list[str], new: str, limit: int) -> None:
    stored = join_ids(tuple(ids))
    assert remember(stored, new, limit) == _reference(stored, new, limit)


@settings(max_examples=1000)
@given(raw=st.text("ab\x1f", max_size=12), new=_IDS, limit=st.integers(0, 9))
def test_remember_is_append_then_trim_even_on_malformed_memories(raw: str, new: str, limit: int) -> None:
    """Whatever string a stored state holds (a storage bug, a hand-edited hash), the result is the same."""
    assert remember(raw, new, limit) == _reference(raw, new, limit)


def test_remember_keeps_the_most_recent_ids() -> None:
    stored = join_ids(("e1", "e2", "e3"))
    assert remember(stored, "e4", 3) == join_ids(("e2", "e3", "e4"))
    assert remember(stored, "e4", 2) == join_ids(("e3", "e4"))
    assert remember(stored, "e4", 5) == join_ids(("e1", "e2", "e3", "e4"))
    assert remember("", "e1", 1) == join_ids(("e1",))
