"""Index deltas from before/after mappings and transitions; `as of` answers from a history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from segmentation.transition import Transition, transition_id
from streams.read.history import History, HistoryEntry, entry_of, segment_at
from streams.store.indexes import IndexDelta, history_entry

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def row(lifecycle: str, rfm: str, money: int, orders: int) -> dict[str, str]:
    return {
        "segment:lifecycle": lifecycle,
        "segment:rfm": rfm,
        "monetary_minor": str(money),
        "orders": str(orders),
        "email:sent": "0",
    }


def test_a_new_customer_enters_every_segment_with_its_figures() -> None:
    d = IndexDelta()
    d.customer("c1", None, row("new", "", 500, 1))
    assert dict(d.members_add) == {("lifecycle", "new"): ["c1"]}
    assert d.kpi_fields() == {
        "lifecycle": [("new:customers", 1), ("new:revenue_minor", 500), ("new:orders", 1)]
    }


def test_a_move_exits_the_old_segment_with_the_old_figures_and_enters_with_the_new() -> None:
    d = IndexDelta()
    before, after = row("new", "x", 500, 1), row("active", "x", 800, 2)
    d.customer("c1", before, after, ["segment:lifecycle", "monetary_minor", "orders"])
    assert dict(d.members_remove) == {("lifecycle", "new"): ["c1"]}
    assert dict(d.members_add) == {("lifecycle", "active"): ["c1"]}
    k = {key: v for key, v in d.kpis.items() if v}
    assert k == {
        ("lifecycle", "new", "customers"): -1,
        ("lifecycle", "new", "revenue_minor"): -500,
        ("lifecycle", "new", "orders"): -1,
        ("lifecycle", "active", "customers"): 1,
        ("lifecycle", "active", "revenue_minor"): 800,
        ("lifecycle", "active", "orders"): 2,
        ("rfm", "x", "revenue_minor"): 300,
        ("rfm", "x", "orders"): 1,
    }


def test_unchanged_segments_and_money_cost_nothing_and_deletion_exits_everything() -> None:
    d = IndexDelta()
    d.customer("c1", row("new", "x", 5, 1), row("new", "x", 5, 1), ["email:sent"])
    assert d.is_empty()
    d.customer("c1", row("new", "x", 5, 1), {})
    assert dict(d.members_remove) == {("lifecycle", "new"): ["c1"], ("rfm", "x"): ["c1"]}
    assert d.kpis[("rfm", "x", "revenue_minor")] == -5


def t(cid: str, grid: str, a: str | None, b: str | None, at: datetime, cause: str = "e1") -> Transition:
    return Transition.create(cid, grid, a, b, at, cause, "v1", {"rule": "r"})


def test_flows_follow_transitions_and_an_erasure_resets_the_history() -> None:
    d = IndexDelta()
    d.transitions(
        [
            t("c1", "lifecycle", None, "new", T0),
            t("c1", "lifecycle", "new", "active", T0 + timedelta(days=1)),
            t("c2", "lifecycle", None, "new", T0),
            t("c2", "lifecycle", "new", None, T0 + timedelta(hours=1), "erase"),
            t("c2", "lifecycle", None, "new", T0 + timedelta(hours=2), "again"),
        ]
    )
    assert d.flow_fields()["lifecycle"] == [
        ("new:in:2026-01-01", 3),
        ("new:out:2026-01-02", 1),
        ("active:in:2026-01-02", 1),
        ("new:out:2026-01-01", 1),
    ]
    assert len(d.history["c1"]) == 2
    assert len(d.history["c2"]) == 1 and d.history_reset == {"c2"}
    d.erased("c1")
    assert "c1" not in d.history and "c1" in d.history_reset


def entry(grid: str, a: str | None, b: str | None, at: datetime) -> HistoryEntry:
    return HistoryEntry(grid=grid, from_segment=a, to_segment=b, effective_at=at, cause="x", id="i", why={})


def test_as_of_known_not_yet_and_beyond_a_trimmed_history() -> None:
    entries = [
        entry("lifecycle", None, "new", T0),
        entry("lifecycle", "new", "active", T0 + timedelta(days=10)),
    ]
    h = History(customer_id="c", entries=entries, trimmed=False)
    assert segment_at(h, "lifecycle", T0 - timedelta(seconds=1)).status == "not_yet"
    at = segment_at(h, "lifecycle", T0 + timedelta(days=5))
    assert (at.status, at.segment, at.since) == ("known", "new", T0)
    assert segment_at(h, "lifecycle", T0 + timedelta(days=10)).segment == "active"
    cut = History(customer_id="c", entries=entries[1:], trimmed=True)
    assert segment_at(cut, "lifecycle", T0 + timedelta(days=5)).status == "beyond_history"
    assert segment_at(cut, "lifecycle", T0 + timedelta(days=11)).segment == "active"


def test_a_history_entry_reads_back_as_the_transition_with_its_exact_id() -> None:
    sent = Transition.create(
        "c9", "rfm", "loyal", "champions", T0 + timedelta(microseconds=7), "e42", "v1", {"rule": "r >= 4"}
    )
    stored = history_entry(sent)
    assert b'"id"' not in stored and b'"grid"' not in stored  # positional: no keys, id derived on read
    got = entry_of("c9", orjson.loads(stored))
    assert (got.id, got.grid, got.from_segment, got.to_segment, got.effective_at, got.cause, got.why) == (
        sent.id, "rfm", "loyal", "champions", sent.effective_at, "e42", {"rule": "r >= 4"},
    )  # fmt: skip
    first = Transition.create("c9", "lifecycle", None, "new", T0, "e1", "v1", {})
    assert entry_of("c9", orjson.loads(history_entry(first))).id == first.id


def test_a_definitions_change_keeps_its_version_in_history_and_id() -> None:
    """v2, back to v1, then v2 again move a dormant customer the same way at the same instant: the two v2
    moves are one id (a redelivery), the v3 move with the same from/to is another; the reader agrees."""
    v2 = Transition.create("c9", "rfm", "loyal", "champions", T0, "definitions", "v2", {"rule": "r >= 4"})
    v2_again = Transition.create("c9", "rfm", "loyal", "champions", T0, "definitions", "v2", {})
    v3 = Transition.create("c9", "rfm", "loyal", "champions", T0, "definitions", "v3", {"rule": "r >= 3"})
    assert v2.id == v2_again.id != v3.id
    for sent in (v2, v3):
        stored = orjson.loads(history_entry(sent))
        assert stored[6] == sent.definitions_version
        assert entry_of("c9", stored).id == sent.id
    # an event's transition: the version is not part of its id (replays under new definitions keep ids)
    by_event = Transition.create("c9", "rfm", "loyal", "champions", T0, "e7", "v2", {})
    assert by_event.id == Transition.create("c9", "rfm", "loyal", "champions", T0, "e7", "v3", {}).id
    assert len(orjson.loads(history_entry(by_event))) == 6
    # an entry stored before versions counted reads back with the id it was published with
    old_style = [*orjson.loads(history_entry(v2))[:6]]
    assert entry_of("c9", old_style).id == transition_id("c9", "rfm", "loyal", "champions", T0, "definitions")


def test_history_entries_written_by_older_versions_stay_readable() -> None:
    old = {"grid": "lifecycle", "from": None, "to": "new", "at": "2026-01-01T00:00:00+00:00",
           "cause": "e1", "id": "abc", "why": {"rule": "x"}}  # fmt: skip
    got = entry_of("c1", old)
    assert (got.id, got.to_segment, got.effective_at, got.why) == ("abc", "new", T0, {"rule": "x"})
    with pytest.raises(ValueError, match="unreadable history entry"):
        entry_of("c1", "garbage")
