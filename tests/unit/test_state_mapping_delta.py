"""`changed_fields` (and `write_for` with it) is exactly the diff of two full views, for any two states, and
what `write_for` sends turns one stored hash into the other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from segmentation import CustomerState
from segmentation.duplicates import event_key
from segmentation.state import CategoryTotal, RecentOrder
from segmentation.state_mapping import (
    STATE,
    changed_fields,
    packed_text,
    readable_fields,
    state_to_mapping,
    view_of,
)
from streams.store.stored_state import loaded
from streams.store.writes import Written, write_for


def view(state: CustomerState) -> dict[str, str]:
    """What the store keeps in memory for a customer: every readable field, stored or not, and `state`."""
    return readable_fields(state) | {STATE: packed_text(state)}


def full_diff(old: CustomerState, new: CustomerState) -> tuple[dict[str, str], list[str]]:
    before, after = view(old), view(new)
    return {k: v for k, v in after.items() if before.get(k) != v}, [k for k in before if k not in after]


_times = st.one_of(
    st.none(),
    st.sampled_from(
        [
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),  # the same instant, another zone
            datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC),
        ]
    ),
)
_texts = st.one_of(st.none(), st.sampled_from(["", "a", "gold", "SE", "é\x00"]))
_ints = st.sampled_from([0, 1, 7, -3])
_opt_ints = st.one_of(st.none(), _ints)
_floats = st.sampled_from([0.0, -0.0, 0.5, 1e-300, float("inf")])
_audiences = st.lists(
    st.tuples(st.sampled_from(["a", "b", "vip"]), st.sampled_from(["member", "not_member"])), max_size=3
).map(lambda pairs: tuple(sorted(pairs)))
_recent = st.lists(st.sampled_from(["e1", "e2", "é", "a-long-event-id"]), max_size=3).map(
    lambda ids: b"".join(map(event_key, ids))
)


_categories = st.lists(
    st.builds(CategoryTotal, st.sampled_from(["shoes", "home", "é"]), _ints, _ints), max_size=2
).map(tuple)
_orders = st.lists(
    st.builds(
        RecentOrder,
        _times.filter(lambda t: t is not None),
        st.sampled_from(["o1", 'o"2']),
        st.sampled_from(["web", "store"]),
        st.booleans(),
        _ints,
        st.sampled_from([(), ("shoes",), ("home", "shoes")]),
    ),
    max_size=2,
).map(tuple)


def _strategy(name: str, default: Any) -> st.SearchStrategy[Any]:
    if name == "categories":
        return _categories
    if name == "recent_orders":
        return _orders
    if name == "customer_id":
        return st.sampled_from(["c1", "c2"])
    if name == "audiences":
        return _audiences
    if name == "recent_ids":
        return _recent
    if name == "currency":
        return st.sampled_from([None, "EUR", "JPY", "XXX"])
    if name == "unsubscribed":
        return st.sampled_from([False, True, 0, 1])
    if isinstance(default, float):
        return _floats
    if isinstance(default, int):
        return _ints
    if name.endswith(("_at", "_since")) or name == "clock" or name.startswith("due_"):
        return _times
    if name in ("survey_score", "birth_year", "household", "rfm_r", "rfm_f", "rfm_m"):
        return _opt_ints
    return _texts


_states = st.fixed_dictionaries(
    {name: _strategy(name, CustomerState._field_defaults.get(name)) for name in CustomerState._fields}
).map(lambda fields: CustomerState(**fields))


@settings(max_examples=400, deadline=None)
@given(_states, _states)
def test_changed_fields_equals_the_diff_of_full_mappings(old: CustomerState, new: CustomerState) -> None:
    assert changed_fields(old, new) == full_diff(old, new)


@settings(max_examples=300, deadline=None)
@given(_states, st.data())
def test_small_changes(old: CustomerState, data: st.DataObject) -> None:
    """Realistic pairs: a few fields change, the others are the very same objects or equal copies."""
    names = data.draw(st.lists(st.sampled_from(CustomerState._fields), max_size=4, unique=True))
    changes = {name: data.draw(_strategy(name, CustomerState._field_defaults.get(name))) for name in names}
    new = old._replace(**changes)
    assert changed_fields(old, new) == full_diff(old, new)
    assert changed_fields(new, new) == ({}, [])


def test_derived_fields_follow_amounts_and_currency() -> None:
    old = CustomerState("c", gross_minor=1234, currency="EUR")
    yen, refunded = old._replace(currency="JPY"), old._replace(refunded_minor=2000)
    assert changed_fields(old, yen) == ({"state": packed_text(yen)}, [])  # the currency is packed only
    assert changed_fields(old, refunded, packed_text(old)) == (
        {"monetary_minor": "0", "state": packed_text(refunded)},  # refunds: packed only
        [],
    )


@settings(max_examples=300, deadline=None)
@given(_states, st.data())
def test_write_for_with_the_cached_mapping_writes_what_a_full_diff_writes(
    old: CustomerState, data: st.DataObject
) -> None:
    """The worker's fast path (a `Written` mapping and its state: readable fields diffed, `state` packed
    once) against the plain one (the same mapping as a row read from Redis, serialised and diffed in full)."""
    names = data.draw(st.lists(st.sampled_from(CustomerState._fields), max_size=4, unique=True))
    new = old._replace(**{n: data.draw(_strategy(n, CustomerState._field_defaults.get(n))) for n in names})
    fast, fast_row = write_for(new, Written.of(view(old), due_stored=True), "0:1", old)
    full, full_row = write_for(new, view(old), "0:1", old)
    assert fast == full
    assert set(fast.readable_changes or ()) == set(full.readable_changes or ())
    # the due entry may stay as stored only from the state last written (a row read back says nothing)
    assert fast.due_kept == (new.first_seen_at is not None and new.next_due_at == old.next_due_at)
    assert not full.due_kept
    if new.first_seen_at is not None:
        assert isinstance(fast_row, Written) and isinstance(full_row, Written)
        assert fast_row.row() == full_row.row() == view(new)
        assert (STATE in fast.binary) == (packed_text(new) != packed_text(old))  # `state` written iff changed
        stored = state_to_mapping(old) | dict(fast.set_fields) | dict(fast.binary)  # the hash after the write
        for key in fast.removed_fields:
            del stored[key]  # KeyError: a deletion of a field the hash does not hold
        stored[STATE] = stored[STATE] if isinstance(stored[STATE], str) else packed_text(new)
        assert stored == state_to_mapping(new) | {"_offset": "0:1"}


@given(
    st.lists(st.text(max_size=20), max_size=8) | st.lists(st.sampled_from(['a"b', "c\\d", "é", "x\u2028"]))
)
@settings(max_examples=300)
def test_the_duplicate_window_text_is_exactly_json(ids: list[str]) -> None:
    import json

    from segmentation.state_fields import _recent_text

    assert _recent_text(tuple(ids)) == json.dumps(ids, ensure_ascii=False)


def test_equal_values_that_are_other_objects_change_nothing() -> None:
    """A readable field whose new value equals the old one but is another object (a segment name or an
    order count decoded afresh) is not written again."""
    old = CustomerState("c", orders=int("1000"), seg_rfm="".join(["cham", "pions"]))
    new = old._replace(orders=int("1000"), seg_rfm="".join(["champ", "ions"]))
    assert new.orders is not old.orders and new.seg_rfm is not old.seg_rfm
    assert changed_fields(old, new) == ({}, [])


@settings(max_examples=300, deadline=None)
@given(_states, st.data())
def test_a_hash_read_back_writes_what_a_full_diff_writes(old: CustomerState, data: st.DataObject) -> None:
    """A customer loaded from Redis (a cold cache): when the hash is what this version writes, `loaded` gives
    a `Written` and the write is the full diff's, field for field; only the due time is always written again
    (the due index is not read back)."""
    row = state_to_mapping(old) | {"_offset": "3:17", "_o": "12"}
    names = data.draw(st.lists(st.sampled_from(CustomerState._fields), max_size=4, unique=True))
    new = old._replace(**{n: data.draw(_strategy(n, CustomerState._field_defaults.get(n))) for n in names})
    try:
        state, mapping = loaded(row, "ns")
    except ValueError:  # the strategy draws values no state holds (an int for a flag): no such hash
        assume(False)
    fast, fast_row = write_for(new, mapping, "0:1", state)
    full, full_row = write_for(new, view_of(row, state), "0:1", state)
    assert isinstance(mapping, Written) and not fast.due_kept and not full.due_kept
    assert fast == full
    assert set(fast.readable_changes or ()) == set(full.readable_changes or ())
    if new.first_seen_at is not None:
        assert isinstance(fast_row, Written) and isinstance(full_row, Written)
        fast_fields, full_fields = fast_row.row(), full_row.row()
        assert fast_fields["_o"] == full_fields["_o"]  # the ordinal the next commit declares
        assert {k: v for k, v in fast_fields.items() if k[:1] != "_"} == {
            k: v for k, v in full_fields.items() if k[:1] != "_"
        }


@pytest.mark.parametrize("extra", [{"segment:rfm": "champions"}, {"clv_12m": "12.5"}])
def test_a_hash_holding_other_fields_is_diffed_in_full(extra: dict[str, str]) -> None:
    """A field this version does not write (an earlier version did) is removed at the next write of that
    customer, as the full diff of a plain view does."""
    old = CustomerState(
        "c", first_seen_at=datetime(2026, 1, 1, tzinfo=UTC), orders=2, seg_value="gold", seg_rfm="loyal"
    )
    row = state_to_mapping(old) | extra
    state, mapping = loaded(row, "ns")
    assert not isinstance(mapping, Written)
    new = state._replace(web_visits=1)
    write, _ = write_for(new, mapping, "0:1", state)
    stored = row | dict(write.set_fields)
    for key in write.removed_fields:
        del stored[key]
    assert {k: v for k, v in stored.items() if k not in (STATE, "_offset")} == {
        k: v for k, v in state_to_mapping(new).items() if k != STATE
    }


@pytest.mark.parametrize(
    "change",
    [
        {"orders": "999"},  # a figure out of step with the state
        {"value": ""},  # a segment stored empty, which this version leaves absent
        {"orders": None, "audience:x": "not_member"},  # a figure missing, an answer left absent
    ],
)
def test_a_hash_whose_readable_fields_are_not_its_state_s_writes_what_the_plain_view_writes(
    change: dict[str, str | None],
) -> None:
    """Readable fields are read back as the state gives them, in the plain view as in a `Written`."""
    old = CustomerState(
        "c", first_seen_at=datetime(2026, 1, 1, tzinfo=UTC), orders=2, seg_value="gold", seg_rfm="loyal"
    )
    row = state_to_mapping(old) | {"_offset": "3:17"}
    for key, text in change.items():
        if text is None:
            del row[key]
        else:
            row[key] = text
    state, mapping = loaded(row, "ns")
    assert isinstance(mapping, Written) and "_offset" not in mapping
    for new in (state._replace(web_visits=1), state._replace(orders=3, seg_value=None)):
        fast, _ = write_for(new, mapping, "0:1", state)
        assert fast == write_for(new, view_of(row, state), "0:1", state)[0]
