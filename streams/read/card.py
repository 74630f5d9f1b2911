"""`segstream customer <id>`: one customer as a card a person reads, from the read client's answers.

The raw hash holds ~70 fields, 64 event-id digests among them; an operator asking "where is this customer and
why" wants each grid's segment with since when (the kept history) and the rule that keeps it there (derived
from the state as of its clock), the RFM
scores, the money in major units with its currency, and the last purchase. `--json` keeps the raw hash for
scripts. Rendering is pure (`render_card`), so it is tested without a terminal; `why` lines wrap at `WIDTH`.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from decimal import Decimal, InvalidOperation

from streams.read.history import History, HistoryEntry
from streams.read.profile import CustomerProfile, Money
from streams.read.sync_reader import SyncReader
from streams.settings import Settings

__all__ = ["WIDTH", "customer_card", "render_card"]

WIDTH = 100  # a terminal split in two still shows whole lines


def customer_card(settings: Settings, customer_id: str) -> str | None:
    """The card of `customer_id` in the configured (else active) namespace; None when it is unknown."""
    with SyncReader(settings) as reader:
        profile = reader.get_customer(customer_id)
        if profile is None:
            return None
        history = reader.history(customer_id)
        return render_card(profile, history, reader.namespace())


def render_card(profile: CustomerProfile, history: History | None, namespace: str) -> str:
    """The card: header and freshness, segments (since, why), RFM, value, last purchase."""
    fresh = profile.freshness
    lines = [
        f"customer {profile.customer_id}  (namespace {namespace}, partition {profile.partition})",
        f"  segments as of {_when(fresh.clock)}; definitions {fresh.definitions_version or '-'}",
        f"  last event {_when(fresh.last_event_at)}, applied at offset {fresh.offset or '-'}",
        "",
        "segments (why: the rule and the values that keep the customer there, as of its clock)",
    ]
    entries = history.entries if history is not None else []
    reasons = history.why if history is not None else {}
    trimmed = history.trimmed if history is not None else profile.history_trimmed
    grid_width = min(max((len(g) for g in profile.segments), default=4), 30) + 2
    segment_width = max((len(s or "-") for s in profile.segments.values()), default=1) + 2
    for grid, segment in profile.segments.items():
        entry = _entry_of(entries, grid, segment)
        if entry is not None:
            since = f"since {_when(entry.effective_at)}"
        elif grid == "lifecycle" and profile.lifecycle.since is not None:
            since = f"since {_when(profile.lifecycle.since)}"
        else:
            since = "since before the kept history" if trimmed else "since -"
        lines.append(f"  {grid:<{grid_width}}{segment or '-':<{segment_width}}{since}")
        if entry is not None or grid in reasons:
            moved = _cause(entry.cause) if entry is not None else ""
            lines += textwrap.wrap(
                "; ".join(part for part in (_why(reasons.get(grid, {})), moved) if part),
                WIDTH,
                initial_indent="      why: ",
                subsequent_indent="           ",
                break_on_hyphens=False,
            )
    rfm, metrics = profile.rfm, profile.metrics
    scores = f"R {rfm.r}  F {rfm.f}  M {rfm.m}" if rfm.r is not None else "no scores (no purchase yet)"
    lines += [
        "",
        f"RFM            {scores}  ->  {rfm.segment or '-'}",
        f"value          net {_money(metrics.net)}  (gross {_money(metrics.gross)},"
        f" refunded {_money(metrics.refunded)})",
        f"               {metrics.orders:,} order{'s' * (metrics.orders != 1)},"
        f" {metrics.refunds:,} refund{'s' * (metrics.refunds != 1)}",
        f"last purchase  {_when(metrics.last_purchase_at)}"
        + (f"  (first {_when(metrics.first_purchase_at)})" if metrics.first_purchase_at else ""),
    ]
    if profile.lifecycle.reactivated_at is not None:
        lines.append(f"reactivated    {_when(profile.lifecycle.reactivated_at)}")
    return "\n".join(lines)


def _entry_of(entries: list[HistoryEntry], grid: str, segment: str | None) -> HistoryEntry | None:
    """The kept transition that put the customer in its current segment: the grid's last one, when it
    leads there (a trimmed history may have lost it: then None, and the card says so)."""
    for entry in reversed(entries):
        if entry.grid == grid:
            return entry if entry.to_segment == segment else None
    return None


def _cause(cause: str) -> str:
    if cause == "time":
        return "moved by time passing"
    if cause == "definitions":
        return "moved by a definitions change"
    return f"moved by event {cause}"


def _why(why: dict[str, str]) -> str:
    """The rule first, then the values it looked at (long floats shortened: 2.38918988065598 -> 2.389)."""
    rule = why.get("rule", "")
    values = ", ".join(f"{k}={_short(v)}" for k, v in why.items() if k != "rule")
    return f"{rule} ({values})" if rule and values else rule or values


def _short(value: str) -> str:
    if "." not in value or len(value.partition(".")[2]) <= 4:
        return value
    try:
        return f"{Decimal(value):.4g}"
    except InvalidOperation:
        return value


def _money(amount: Money | None) -> str:
    if amount is None:
        return "-"
    return f"{Decimal(amount.amount):,} {amount.currency}"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")
