"""The commit's one-argument block: packed states go in as bytes, never made text, and the block is exactly
what encoding every part as text would give (so commit.lua reads the same bytes either way)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation import CustomerState
from segmentation.state_mapping import STATE, packed_bytes, packed_text
from streams.store.commit_script import SEP, block, encoded, write_parts
from streams.store.port import CustomerWrite

_text = st.text(st.characters(codec="utf-8"), max_size=6) | st.sampled_from(["", "a\x00b", "\udcff", "é"])
_packed = st.binary(max_size=12).map(lambda b: b.replace(b"\x00", b"\x01"))  # packed states hold no NUL


def _as_text(part: str | bytes) -> str:
    return part if isinstance(part, str) else part.decode("utf-8", "surrogateescape")


@settings(max_examples=500)
@given(st.lists(_text | _packed, min_size=1, max_size=8))
def test_the_block_is_every_part_encoded_and_joined(parts: list[str | bytes]) -> None:
    text = SEP.join(_as_text(part) for part in parts)
    if text.count(SEP) == len(parts) - 1:
        assert block(parts) == text.encode("utf-8", "surrogateescape")
    else:  # some part holds SEP: one argument each
        assert block(parts) is None
    assert [encoded(part) for part in parts] == [
        _as_text(p).encode("utf-8", "surrogateescape") for p in parts
    ]


def test_binary_fields_are_the_last_pairs_counted_in_n_set() -> None:
    state = CustomerState.new("c1")
    raw = packed_bytes(state)
    as_bytes = CustomerWrite("c1", {"lifecycle": "new"}, ["gone"], due_us=5, binary={STATE: raw})
    as_text = CustomerWrite("c1", {"lifecycle": "new", STATE: packed_text(state)}, ["gone"], due_us=5)
    parts = write_parts([as_bytes])
    assert parts == ["c1", "S", "5", "2", "1", "lifecycle", "new", STATE, raw, "gone"]
    assert block(parts) == block(write_parts([as_text]))
