"""An erasure is never netted away in a sync (docs/export.md, docs/privacy.md): a customer the CRM holds and
that was erased during the period is `left` to none at its erasure, and `entered` again when a new customer
under the same id is in the segment at the end; `left` rows come first, so applying the rows in order keeps
that customer in."""

from __future__ import annotations

from typing import Any

from segmentation.transition import ERASURE_RULE
from streams.read.changes import net_changes

GRID, SEGMENT = "lifecycle", "new"


def t(
    cid: str, frm: str | None, to: str | None, day: int, tid: str, rule: str = "x", grid: str = GRID
) -> dict[str, Any]:
    return {"id": tid, "customer_id": cid, "grid": grid, "from_segment": frm, "to_segment": to,
            "effective_at": f"2026-01-{day:02d}T00:00:00+00:00", "why": {"rule": rule}}  # fmt: skip


def erased(cid: str, frm: str, day: int, tid: str, grid: str = GRID) -> dict[str, Any]:
    return t(cid, frm, None, day, tid, ERASURE_RULE, grid)


def rows(
    log: list[dict[str, Any]], before: tuple[str, ...] = ()
) -> list[tuple[str, str, str | None, str | None, str]]:
    return [(c.customer_id, c.change, c.from_segment, c.to_segment, c.transition_id)
            for c in net_changes(log, GRID, SEGMENT, before)]  # fmt: skip


def test_erased_in_the_segment_and_back_is_left_then_entered() -> None:
    log = [erased("a", "new", 2, "a1"), t("a", None, "new", 3, "a2")]
    assert rows(log) == [("a", "left", "new", None, "a1"), ("a", "entered", None, "new", "a2")]


def test_erased_from_another_segment_of_the_grid_and_back_is_left_then_entered() -> None:
    # the erasure does not touch `new` (the customer had moved on): it still has to reach the CRM
    log = [t("a", "new", "active", 2, "a1"), erased("a", "active", 3, "a2"), t("a", None, "new", 4, "a3")]
    assert rows(log) == [("a", "left", "active", None, "a2"), ("a", "entered", None, "new", "a3")]


def test_erased_and_back_elsewhere_or_out_again_is_left_at_the_erasure() -> None:
    elsewhere = [erased("a", "new", 2, "a1"), t("a", None, "active", 3, "a2")]
    assert rows(elsewhere) == [("a", "left", "new", None, "a1")]
    out_again = [erased("b", "new", 2, "b1"), t("b", None, "new", 3, "b2"), t("b", "new", "active", 4, "b3")]
    assert rows(out_again) == [("b", "left", "new", None, "b1")]  # not `left` to active: it was erased


def test_a_customer_the_crm_did_not_hold_is_only_entered_or_nothing() -> None:
    entered = [t("a", None, "new", 1, "a1"), erased("a", "new", 2, "a2"), t("a", None, "new", 3, "a3")]
    assert rows(entered) == [("a", "entered", None, "new", "a3")]
    gone = [t("b", None, "new", 1, "b1"), erased("b", "new", 2, "b2")]
    assert rows(gone) == []
    never = [t("c", None, "active", 1, "c1"), erased("c", "active", 2, "c2")]  # erased, never in `new`
    assert rows(never) == []


def test_a_grid_that_left_the_definitions_and_came_back_nets_out() -> None:
    # X -> None without the erasure rule: no personal data to forget, so the usual netting applies
    log = [t("a", "new", None, 2, "a1", rule="grid removed"), t("a", None, "new", 3, "a2")]
    assert rows(log) == []


def test_erasures_of_other_grids_and_repeated_or_earlier_ids_count_once_or_not_at_all() -> None:
    other_grid = [erased("a", "champions", 2, "a1", grid="rfm"), t("a", None, "new", 3, "a2")]
    assert rows(other_grid) == [("a", "entered", None, "new", "a2")]
    again = [erased("b", "new", 2, "b1"), t("b", None, "new", 3, "b2"), erased("b", "new", 2, "b1")]
    assert rows(again) == [("b", "left", "new", None, "b1"), ("b", "entered", None, "new", "b2")]
    # the erasure was published before the period (its copy in the lookback): only the comeback is new
    assert rows([erased("c", "new", 2, "c1"), t("c", None, "new", 3, "c2")], before=("c1",)) == [
        ("c", "entered", None, "new", "c2")
    ]


def test_every_left_row_comes_before_every_entered_row() -> None:
    log = [
        t("a", None, "new", 1, "a1"),
        t("z", "new", "active", 1, "z1"),
        erased("m", "new", 2, "m1"),
        t("m", None, "new", 3, "m2"),
        t("b", "new", "active", 4, "b1"),
    ]
    assert [(cid, change) for cid, change, *_ in rows(log)] == [
        ("b", "left"), ("m", "left"), ("z", "left"), ("a", "entered"), ("m", "entered"),
    ]  # fmt: skip
