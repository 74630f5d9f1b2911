"""The packed state (storage format 2): exact round trip over generated states, no NUL, clear refusals."""

from __future__ import annotations

import math
import struct
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmentation import CustomerState
from segmentation.state import ID_SEPARATOR, CategoryTotal, RecentOrder
from segmentation.state_codec import FORMAT, StorageFormatError, pack_state, unpack_state

_INT64 = st.integers(-(2**63), 2**63 - 1)
_FLOATS = st.floats(allow_nan=False) | st.sampled_from([-0.0, 0.0, 5e-324, -5e-324, 2.2250738585072e-308])
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)  # any Unicode but lone surrogates
_TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
) | st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])).filter(
    lambda t: datetime(1, 1, 2, tzinfo=UTC) < t < datetime(9999, 12, 30, tzinfo=UTC)
)
_IDS = st.lists(_TEXT.filter(lambda s: ID_SEPARATOR not in s), max_size=6).map(
    lambda ids: ID_SEPARATOR + ID_SEPARATOR.join(ids) + ID_SEPARATOR if ids else ""
)
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
    packed = bytes([FORMAT]) + older.translate(bytes.maketrans(b"\x00\xc1", b"\xc1\x00"))
    assert unpack_state(packed) == state


def test_escaped_bytes_round_trip() -> None:
    """Values whose msgpack holds the swapped byte 0xC1 and the escape byte 0xD4 (as data, not as types)."""
    state = CustomerState(
        "\xc1\xd4", gross_minor=0xC1D4, refunded_minor=0xD4C100, email_click_score=-2.5e-310
    )
    packed = pack_state(state)
    assert b"\xd4\x01" in packed and b"\xd4\x02" in packed and b"\x00" not in packed
    assert unpack_state(packed) == state


@pytest.mark.parametrize(
    ("packed", "error", "message"),
    [
        (b"", ValueError, "packed customer state is empty"),
        (b"\x01\x90", StorageFormatError, "storage format 1, this segstream reads format 2 only: rebuild"),
        (b"\x03\x90", StorageFormatError, "storage format 3"),
        (b"\x02\x90\x00", ValueError, "an unescaped NUL"),
        (b"\x02\xd4\x05", ValueError, "a bad escape sequence"),
        (b"\x02\xa1", ValueError, "damaged"),  # truncated
        (b"\x02\x90", ValueError, "damaged"),  # no customer id
        (b"\x02\x92\xa1c\xa1x", ValueError, "damaged"),  # a clock that is no time
    ],
)
def test_another_format_or_a_damaged_value_is_refused(packed: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        unpack_state(packed)


def test_a_value_msgpack_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be packed"):
        pack_state(CustomerState("c", gross_minor=2**64))
