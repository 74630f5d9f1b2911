"""Duplicate detection keeps 9-byte keys: short ids as themselves, long ones as a digest, both recognised."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from segmentation import apply
from segmentation.duplicates import KEY_SIZE, duplicate_key, event_key, key_text
from tests.unit.seg_helpers import DEFAULT, day, ev, purchase, run

UUID = "123e4567-e89b-12d3-a456-426614174000"


def test_an_id_of_8_bytes_is_kept_as_itself_and_a_longer_one_as_a_pinned_digest() -> None:
    assert event_key("e1") == b"\x02e1" + bytes(6)
    assert event_key("é" * 4) == b"\x08" + "é".encode() * 4  # 8 UTF-8 bytes
    assert event_key(UUID).hex() == "ef667a2973544f1ccb"  # pinned: replays on any machine must agree
    assert key_text(event_key(UUID)) == "72Z6KXNUTxzL" == duplicate_key(UUID)  # format 4's text here
    assert event_key("evt-000010").hex() == "095df6d05d73f27305"  # its digest began 0x00: moved above 8
    assert key_text(event_key("evt-000010")) == "CV320F1z8nMF"
    assert key_text(event_key("\ud800")) == "\ud800"  # a lone surrogate JSON can carry, kept as itself
    assert len(event_key("x" * 128)) == KEY_SIZE and event_key("a" * 9) != event_key("b" * 9)
    assert len(event_key("\ud800" * 20)) == KEY_SIZE  # a lone surrogate JSON can carry does not crash it


@given(st.text(max_size=40))
def test_a_kept_id_and_a_digest_never_share_a_key(event_id: str) -> None:
    """A kept id's first byte is its length (0-8), a digest's is above 8: they cannot collide."""
    key = event_key(event_id)
    size = len(event_id.encode("utf-8", "surrogatepass"))
    assert len(key) == KEY_SIZE and (key[0] == size if size <= KEY_SIZE - 1 else key[0] >= KEY_SIZE)
    if size <= KEY_SIZE - 1:
        assert key_text(key) == event_id


def test_a_damaged_kept_id_is_shown_as_its_key_not_refused() -> None:
    """Only `recent_event_ids` reads a key back: invalid UTF-8 or a non-zero padding shows the key itself."""
    assert key_text(b"\x02\xff\xfe" + bytes(6)) == "Av_-AAAAAAAA"
    assert key_text(b"\x01a" + b"\x00" * 6 + b"x") == "AWEAAAAAAAB4"


def test_a_long_id_delivered_twice_counts_once_and_costs_9_bytes() -> None:
    state, _ = run([purchase(day(0), event_id=UUID)])
    assert state.recent_ids == event_key(UUID) and state.recent_event_ids == ("72Z6KXNUTxzL",)
    again = purchase(day(1), event_id=UUID)
    assert apply(state, again, DEFAULT).state is state
    assert state.orders == 1


def test_a_short_id_delivered_twice_counts_once() -> None:
    state, _ = run([purchase(day(0), event_id="o-17"), purchase(day(1), event_id="o-18")])
    assert state.recent_event_ids == ("o-17", "o-18")
    assert apply(state, purchase(day(2), event_id="o-17"), DEFAULT).state is state


def test_an_erasure_remembers_no_id_and_covers_itself_sent_again() -> None:
    """Not even the erasure's own id stays (it may hold the customer's); `erased_at` covers a resend."""
    state, _ = run([purchase(day(0)), ev("customer_erased", day(1), event_id=UUID)])
    assert (state.recent_ids, state.erased_at) == (b"", day(1))
    assert apply(state, ev("customer_erased", day(1), event_id=UUID), DEFAULT).state is state
