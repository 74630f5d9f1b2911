"""The packed state (storage format 5): exact round trip over generated states, no NUL, clear refusals
(earlier formats included), and the frozen dictionary that halves it."""

from __future__ import annotations

import hashlib
import math
import statistics
import struct
import typing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import segmentation
from segmentation import CustomerState
from segmentation.duplicates import KEY_SIZE
from segmentation.state import CategoryTotal, RecentOrder
from segmentation.state_codec import (
    DICTIONARY,
    FORMAT,
    StorageFormatError,
    nul_free,
    pack_state,
    raw_state,
    unpack_state,
    with_nul,
)
from segmentation.state_mapping import stored_part
from streams.core.dictionaries import samples
from streams.sample.generator import SampleSpec
from tests.unit.seg_helpers import format_5

# Format 5 is this dictionary: a state written with it must decompress with it forever. Another dictionary
# needs another format byte (state_codec.py), never a new digest here.
_DICTIONARY_SHA256 = "85d266c11c55434af3a61a8472b686f9813da1fb1bc21743264b6870d40329b5"


_INT64 = st.integers(-(2**63), 2**63 - 1)
_FLOATS = st.floats(allow_nan=False) | st.sampled_from([-0.0, 0.0, 5e-324, -5e-324, 2.2250738585072e-308])
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)  # any Unicode but lone surrogates
_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
) | st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])).filter(
    lambda t: datetime(1, 1, 2, tzinfo=UTC) < t < datetime(9999, 12, 30, tzinfo=UTC)
)
_IDS = st.lists(st.binary(min_size=KEY_SIZE, max_size=KEY_SIZE), max_size=6).map(b"".join)
_ORDERS = st.lists(
    st.builds(
        RecentOrder, _TIMES, _TEXT, _TEXT, st.booleans(), _INT64, st.lists(_TEXT, max_size=3).map(tuple)
    ),
    max_size=3,
).map(tuple)
_CATEGORIES = st.lists(st.builds(CategoryTotal, _TEXT, _INT64, _INT64), max_size=3).map(tuple)
_AUDIENCES = st.lists(st.tuples(_TEXT, st.sampled_from(["member", "not_member"])), max_size=3).map(tuple)
_HINTS = typing.get_type_hints(CustomerState)


def _field(name: str) -> st.SearchStrategy[Any]:
    special = {
        "customer_id": _TEXT,
        "recent_ids": _IDS,
        "recent_orders": _ORDERS,
        "categories": _CATEGORIES,
        "audiences": _AUDIENCES,
    }
    if name in special:
        return special[name]
    hint = _HINTS[name]
    kinds = [k for k in typing.get_args(hint) or (hint,) if k is not type(None)]
    base = {int: _INT64, float: _FLOATS, bool: st.booleans(), str: _TEXT, datetime: _TIMES}[kinds[0]]
    return st.none() | base if type(None) in typing.get_args(hint) else base


_STATES = st.fixed_dictionaries({name: _field(name) for name in CustomerState._fields}).map(
    lambda fields: CustomerState(**fields)
)


def _bits(state: CustomerState) -> list[Any]:
    """Floats as their bits: -0.0 and 0.0 compare equal, the round trip must keep them apart."""
    return [struct.pack(">d", v) if isinstance(v, float) else v for v in state]


@settings(max_examples=500, deadline=None)
@given(_STATES)
def test_unpack_gives_back_the_packed_state_exactly(state: CustomerState) -> None:
    packed = pack_state(state)
    assert packed[0] == FORMAT and b"\x00" not in packed
    back = unpack_state(packed)
    assert back == state and _bits(back) == _bits(state)
    assert all(t is None or t.tzinfo is not None for t in back if isinstance(t, datetime | type(None)))
    assert pack_state(back) == packed  # one state, one packing (the store diffs the packed text)


def test_a_new_customer_is_small_and_times_are_exact_to_the_microsecond() -> None:
    assert len(pack_state(CustomerState.new("c1"))) < 90
    at = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=timezone(timedelta(hours=2)))
    back = unpack_state(pack_state(CustomerState("c", clock=at, email_open_score=math.inf)))
    assert back.clock == at and back.clock.tzinfo == UTC and back.clock.microsecond == 890


def test_a_state_packed_before_trailing_fields_existed_reads_them_as_defaults() -> None:
    state = CustomerState("c", orders=2)
    older = msgspec.msgpack.encode(tuple(state)[: CustomerState._fields.index("coupon_orders")])
    assert unpack_state(format_5(older)) == state


def test_the_window_is_written_beside_the_compressed_part_whole() -> None:
    """Its random digests would not compress: the value grows by exactly its 9 bytes an id."""
    window = bytes(range(KEY_SIZE * 3)) + b"\x00\xc1\xd4" * 3  # NUL, the swapped and the escape byte
    state = CustomerState("c", orders=2)
    packed = pack_state(state._replace(recent_ids=window))
    assert with_nul(packed[1:])[: 2 + len(window)] == b"\x00\x04" + window
    assert packed == format_5(raw_state(state), window)
    assert unpack_state(packed).recent_ids == window


@pytest.mark.parametrize("head", [2, 3, 4])
def test_a_state_of_an_earlier_format_is_refused_naming_the_fix(head: int) -> None:
    """Format 2 (uncompressed, up to 65f8a17), 3 (the dictionary before audiences' `not_member` answers
    were packed) and 4 (the event-id window inside the compressed part, as text): rebuilt by replay."""
    raw = raw_state(CustomerState("c", orders=2))
    with pytest.raises(StorageFormatError, match=f"storage format {head}, .*segstream replay"):
        unpack_state(bytes([head]) + nul_free(raw))


def test_escaped_bytes_round_trip() -> None:
    """Bytes holding the swapped byte 0xC1, the escape byte 0xD4 and NUL, as compressed output may."""
    raw = bytes(range(256)) * 3 + b"\x00\x00\xd4\xd4\xc1\x00\xd4\x01\xd4\x02"
    escaped = nul_free(raw)
    assert b"\x00" not in escaped and b"\xd4\x01" in escaped and b"\xd4\x02" in escaped
    assert with_nul(escaped) == raw
    state = CustomerState(
        "\xc1\xd4", gross_minor=0xC1D4, refunded_minor=0xD4C100, email_click_score=-2.5e-310
    )
    assert unpack_state(pack_state(state)) == state


def test_the_dictionary_is_the_one_format_5_was_written_with() -> None:
    data = (Path(segmentation.__file__).parent / DICTIONARY).read_bytes()
    assert hashlib.sha256(data).hexdigest() == _DICTIONARY_SHA256


def test_the_dictionary_halves_generated_states_it_was_not_trained_on() -> None:
    """Seeds the dictionary never saw, both profiles: without a dictionary zstd saves ~25 % on these."""
    for spec in (
        SampleSpec(customers=150, days=365, seed=77),
        SampleSpec(customers=300, days=548, seed=78, profile="order-history"),
    ):
        raws = samples(spec, every=4).state
        states = [msgspec.msgpack.decode(raw, type=CustomerState) for raw in raws]
        ratio = statistics.mean(len(pack_state(s)) / len(raw) for s, raw in zip(states, raws, strict=True))
        assert ratio < (0.75 if spec.profile == "default" else 0.6), (spec.profile, ratio)
    assert stored_part(CustomerState.new("c")) == CustomerState.new("c")


@pytest.mark.parametrize(
    ("packed", "error", "message"),
    [
        (b"", ValueError, "packed customer state is empty"),
        (
            b"\x01\x90",
            StorageFormatError,
            "storage format 1, this segstream reads format 5 only: rebuild",
        ),
        (b"\x06\x90", StorageFormatError, "storage format 6"),
        (b"\x05\xc1\xc1\x90", ValueError, "damaged"),  # no zstd frame
        (b"\x05\x90", ValueError, "window is cut short"),
        (b"\x05" + nul_free(b"\x00\x02" + bytes(KEY_SIZE + 3)), ValueError, "window is cut short"),
        (b"\x05" + nul_free(b"\x00\x00" + b"\xfd" * 12), ValueError, "damaged"),
        (
            b"\x05" + nul_free(b"\x00\x00\xe0" + (2**40).to_bytes(8, "little") + b"\x01\x00\x00"),
            ValueError,
            "claims",
        ),
        (b"\x05\x90\x00", ValueError, "an unescaped NUL"),
        (b"\x05\xd4\x05", ValueError, "a bad escape sequence"),
        (format_5(b"\xa1"), ValueError, "damaged"),  # truncated
        (format_5(b"\x90"), ValueError, "damaged"),  # no customer id
        (format_5(b"\x92\xa1c\xa1x"), ValueError, "damaged"),  # a clock that is no time
    ],
)
def test_another_format_or_a_damaged_value_is_refused(packed: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        unpack_state(packed)


def test_a_value_msgpack_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be packed"):
        pack_state(CustomerState("c", gross_minor=2**64))
    with pytest.raises(ValueError, match="cannot be packed: a duplicate window of 10 bytes"):
        pack_state(CustomerState("c", recent_ids=bytes(10)))
    assert unpack_state(pack_state(CustomerState("c", recent_ids=bytes(KEY_SIZE * 0xFFFF)))).orders == 0
    too_many = KEY_SIZE * 0x10000
    with pytest.raises(ValueError, match=f"cannot be packed: a duplicate window of {too_many} bytes"):
        pack_state(CustomerState("c", recent_ids=bytes(too_many)))


def test_a_window_inside_the_compressed_part_is_refused() -> None:
    """pack_state never writes one there: a value with one would not pack back to the same bytes."""
    inside = msgspec.msgpack.encode(CustomerState("c", recent_ids=bytes(KEY_SIZE)))
    for window in (b"", bytes(KEY_SIZE)):
        with pytest.raises(ValueError, match="damaged: a duplicate window inside the compressed part"):
            unpack_state(format_5(inside, window))


def _with_nul_by_counts(raw: bytes) -> bytes:
    """`with_nul` as written up to 7 December 2026 (counts and replaces): the reference of the one below."""
    if b"\x00" in raw:
        raise ValueError("an unescaped NUL")
    if b"\xd4" in raw:
        if raw.count(b"\xd4") != raw.count(b"\xd4\x01") + raw.count(b"\xd4\x02"):
            raise ValueError("a bad escape sequence")
        raw = raw.replace(b"\xd4\x01", b"\x00").replace(b"\xd4\x02", b"\xd4")
    return raw.translate(bytes.maketrans(b"\x00\xc1", b"\xc1\x00"))


_ESCAPE_HEAVY = st.lists(st.sampled_from([b"\x00", b"\x01", b"\x02", b"\xc1", b"\xd4", b"a"]), max_size=24)


@settings(max_examples=2000)
@given(st.binary(max_size=64) | _ESCAPE_HEAVY.map(b"".join), st.booleans())
def test_unescaping_accepts_and_refuses_what_the_counting_version_did(raw: bytes, escaped: bool) -> None:
    """Escaped values (round trips) and arbitrary bytes (bad escapes, stray NULs): the same bytes or the
    same refusal."""
    if escaped:
        raw = nul_free(raw)
    try:
        expected: bytes | str = _with_nul_by_counts(raw)
    except ValueError as exc:
        expected = str(exc)
    try:
        got: bytes | str = with_nul(raw)
    except ValueError as exc:
        got = str(exc)
    assert got == expected
