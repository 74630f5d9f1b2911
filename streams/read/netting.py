"""Netting a period's transitions into rows for a CRM: net entries and exits (`net_changes`, a sync from a
cursor), or end states (`end_states`, the first sync after a full export). See streams/read/changes.py."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from segmentation.transition import ERASURE_RULE


@dataclass(frozen=True)
class Change:
    """One customer's net move over the period: `entered` (from the segment it came from) or `left` (to
    the segment it went to; none after an erasure); `at` and `transition_id` of that last move (of the
    erasure, for a customer erased in the period)."""

    customer_id: str
    change: str
    from_segment: str | None
    to_segment: str | None
    at: str
    transition_id: str

    def as_dict(self) -> dict[str, str | None]:
        return {
            "customer_id": self.customer_id,
            "change": self.change,
            "from": self.from_segment,
            "to": self.to_segment,
            "at": self.at,
            "transition_id": self.transition_id,
        }


@dataclass
class _Net:
    """One customer's moves touching the segment over the period (ids: repeats are dropped), and its last
    erasure in the period's transitions of the grid, if any."""

    was_in: bool
    last: dict[str, Any]
    ids: set[str] = field(default_factory=set)
    erasure: dict[str, Any] | None = None


def net_changes(
    transitions: Iterable[dict[str, Any]], grid: str, segment: str, before: Collection[str] = ()
) -> list[Change]:
    """Net entries and exits of `segment` from transitions in log order (the topic's `data` objects), ids
    in `before` (published before the period) left out; `left` rows first, then `entered`, each by customer
    id (see the module doc for erasures)."""
    moved: dict[str, _Net] = {}
    for t in transitions:
        if not touches(t, grid, segment):
            continue
        if t["id"] in before:
            continue  # a copy of a move published before the period (a crash's republication)
        cid = t["customer_id"]
        net = moved.get(cid)
        if net is None:
            net = moved[cid] = _Net(t.get("from_segment") == segment, t)
        elif t["id"] in net.ids:
            continue  # a redelivery (same id): its effect is already counted
        net.ids.add(t["id"])
        net.last = t
        if _erasure(t):
            net.erasure = t
    out: list[Change] = []
    for cid, net in moved.items():
        now_in = net.last.get("to_segment") == segment
        if net.was_in and net.erasure is not None:  # the CRM holds the erased customer: it must forget it
            out.append(_change(cid, "left", net.erasure))
            if now_in:  # and a new customer under the same id is in the segment now
                out.append(_change(cid, "entered", net.last))
        elif now_in != net.was_in:
            out.append(_change(cid, "entered" if now_in else "left", net.last))
    out.sort(key=lambda c: (c.change != "left", c.customer_id))
    return out


def _change(cid: str, change: str, t: dict[str, Any]) -> Change:
    return Change(cid, change, t.get("from_segment"), t.get("to_segment"), _z(t["effective_at"]), t["id"])


def _z(text: str) -> str:
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def end_states(
    transitions: Iterable[dict[str, Any]], grid: str, segment: str, before: Iterable[dict[str, Any]] = ()
) -> list[Change]:
    """The first sync after a full export: the export read Redis, and Redis lags the topic (a batch's
    transitions are published before its commit, and a crash in between republishes them later), so
    whether the export saw a move published around the noted time is unknown. Every customer with a
    transition touching the segment in the period (a copy too) gets its state at the end instead of a net:
    `entered` when its last move (copies left out: a repeated id, also of one in `before`, the lookback's
    transitions touching the segment) leaves it in the segment, else `left`; applied as an upsert and a
    delete they are right whatever the export held. An erasure in the period is first `left` to none (the
    CRM forgets the erased customer)."""
    seen: dict[str, set[str]] = {}
    last: dict[str, dict[str, Any]] = {}
    erased: dict[str, dict[str, Any]] = {}
    touched: dict[str, None] = {}

    def step(t: dict[str, Any], inside: bool) -> None:
        if not touches(t, grid, segment):
            return
        cid, ids = t["customer_id"], seen.setdefault(t["customer_id"], set())
        if inside:
            touched[cid] = None
        if t["id"] in ids:
            return  # a copy: its move is counted where it was first published
        ids.add(t["id"])
        last[cid] = t
        if inside and _erasure(t):
            erased[cid] = t

    for t in before:
        step(t, False)
    for t in transitions:
        step(t, True)
    out: list[Change] = []
    for cid in touched:
        t = last[cid]
        now_in = t.get("to_segment") == segment
        if cid in erased:
            out.append(_change(cid, "left", erased[cid]))
        elif not now_in:
            out.append(_change(cid, "left", t))
        if now_in:
            out.append(_change(cid, "entered", t))
    out.sort(key=lambda c: (c.change != "left", c.customer_id))
    return out


def touches(t: dict[str, Any], grid: str, segment: str) -> bool:
    """A move into or out of the segment, or an erasure's exit from the grid (from any of its segments)."""
    return t.get("grid") == grid and (segment in (t.get("from_segment"), t.get("to_segment")) or _erasure(t))


def _erasure(t: dict[str, Any]) -> bool:
    why = t.get("why")
    return t.get("to_segment") is None and isinstance(why, dict) and why.get("rule") == ERASURE_RULE
