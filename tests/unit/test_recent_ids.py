"""The window of recent event ids: 9-byte keys, `remember` cuts before appending, `seen` only at a key."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from segmentation.duplicates import KEY_SIZE, remember, seen, trim

_KEYS = st.lists(st.binary(min_size=KEY_SIZE, max_size=KEY_SIZE), max_size=8)


def _keys(n: int) -> list[bytes]:
    return [bytes([n]) * KEY_SIZE for n in range(1, n + 1)]


@given(keys=_KEYS, new=st.binary(min_size=KEY_SIZE, max_size=KEY_SIZE), limit=st.integers(0, 9))
def test_remember_is_append_then_keep_the_last_limit(keys: list[bytes], new: bytes, limit: int) -> None:
    expected = [*keys, new][-limit:] if limit else []
    assert remember(b"".join(keys), new, limit) == b"".join(expected)
    assert trim(b"".join(keys), limit) == b"".join(keys[-limit:] if limit else [])


@given(keys=_KEYS, probe=st.binary(min_size=KEY_SIZE, max_size=KEY_SIZE))
def test_seen_is_membership_of_whole_keys(keys: list[bytes], probe: bytes) -> None:
    assert seen(b"".join(keys), probe) == (probe in keys)


def test_a_key_straddling_two_others_is_not_seen() -> None:
    """The bytes of a key can appear across two remembered keys: only a key boundary counts."""
    a, b = b"abcdefghi", b"jklmnopqr"
    window = a + b
    assert not seen(window, b"defghijkl") and seen(window, b) and seen(window, a)
    assert seen(window + b"defghijkl", b"defghijkl")  # found past an earlier, unaligned hit


def test_remember_keeps_the_most_recent_ids() -> None:
    e1, e2, e3, e4 = _keys(4)
    stored = e1 + e2 + e3
    assert remember(stored, e4, 3) == e2 + e3 + e4
    assert remember(stored, e4, 2) == e3 + e4
    assert remember(stored, e4, 1) == e4
    assert remember(stored, e4, 5) == e1 + e2 + e3 + e4
    assert remember(b"", e1, 1) == e1
