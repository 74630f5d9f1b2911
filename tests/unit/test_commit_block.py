"""The commit's one-argument block: a msgpack array of strs holding every part's exact bytes (packed states
as they are, never made text; text as UTF-8, `surrogateescape` bytes as those bytes), which commit.lua reads
with Redis's cmsgpack (no bin type) and `unpack` reads back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation import CustomerState
from segmentation.state_mapping import STATE, packed_bytes, packed_text
from streams.store.commit_script import encoded, pack, unpack, write_parts
from streams.store.port import CustomerWrite

_text = st.text(st.characters(codec="utf-8"), max_size=6) | st.sampled_from(["", "a\x00b", "\udcff", "é"])
_long = st.integers(0, 70_000).map(lambda n: "x" * n)  # every str length form: fix, 8, 16 and 32 bits
_packed = st.binary(max_size=300)


def _reference(parts: list[str | bytes]) -> bytes:
    """The msgpack spec, written out: array header, then each part as a str of its bytes."""
    n = len(parts)
    out = bytearray([0x90 | n] if n < 16 else [0xDC, *n.to_bytes(2, "big")])
    for part in parts:
        data = encoded(part)
        size = len(data)
        if size < 32:
            out.append(0xA0 | size)
        elif size < 256:
            out += bytes([0xD9, size])
        elif size < 65536:
            out += bytes([0xDA]) + size.to_bytes(2, "big")
        else:
            out += bytes([0xDB]) + size.to_bytes(4, "big")
        out += data
    return bytes(out)


@settings(max_examples=300)
@given(st.lists(_text | _packed | _long, max_size=20))
def test_the_block_is_every_part_as_a_msgpack_str(parts: list[str | bytes]) -> None:
    block = pack(parts)
    assert block == _reference(parts)
    assert unpack(block) == [encoded(part) for part in parts]


def test_unpack_refuses_what_is_not_a_packed_block() -> None:
    with pytest.raises(ValueError, match="not a packed array"):
        unpack(b"\xc4\x01a")
    with pytest.raises(ValueError, match="not a packed str"):
        unpack(b"\x91\xc4\x01a")  # a bin, which the script's cmsgpack cannot read
    with pytest.raises(ValueError, match="bytes after"):
        unpack(pack(["a"]) + b"\xa0")


def test_binary_fields_are_the_last_pairs_counted_in_n_set() -> None:
    state = CustomerState.new("c1")
    raw = packed_bytes(state)
    as_bytes = CustomerWrite("c1", {"lifecycle": "new"}, ["gone"], due_us=5, binary={STATE: raw})
    as_text = CustomerWrite("c1", {"lifecycle": "new", STATE: packed_text(state)}, ["gone"], due_us=5)
    parts = write_parts([as_bytes])
    assert parts == ["c1", "S", "5", "2", "1", "lifecycle", "new", STATE, raw, "gone"]
    assert pack(parts) == pack(write_parts([as_text]))
