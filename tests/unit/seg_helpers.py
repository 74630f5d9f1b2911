"""Shared builders for the segmentation unit tests: events at exact instants, runs over a log."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from segmentation import CustomerState, Definitions, Event, Transition, apply, parse_event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT = Definitions.default()
_ids = itertools.count()


def format_5(raw: bytes, window: bytes = b"") -> bytes:
    """msgpack `raw` as storage format 5 holds it, written out by hand (not by the codec under test): the
    window's count and bytes, then `raw` compressed with the frozen dictionary, all escaped."""
    from segmentation.compressed import Compressed
    from segmentation.duplicates import KEY_SIZE
    from segmentation.state_codec import DICTIONARY, FORMAT, nul_free

    head = (len(window) // KEY_SIZE).to_bytes(2, "big") + window
    return bytes([FORMAT]) + nul_free(head + Compressed("segmentation", DICTIONARY).pack(raw))


def packed_before(state: CustomerState, field: str) -> dict[str, str]:
    """The customer hash of `state` as a segstream that did not have `field` and the fields after it yet
    stored it (their packed array ends before them)."""
    import msgspec

    from segmentation.state_fields import FIELDS
    from segmentation.state_mapping import state_to_mapping, stored_name, stored_part

    cut = CustomerState._fields.index(field)
    newer = {stored_name(key) for key, attr, _ in FIELDS if CustomerState._fields.index(attr) >= cut}
    stored = stored_part(state)
    raw = msgspec.msgpack.encode(tuple(stored._replace(recent_ids=b""))[:cut])
    packed = format_5(raw, stored.recent_ids)
    mapping = {k: v for k, v in state_to_mapping(state).items() if k not in newer}
    return mapping | {"state": packed.decode("utf-8", "surrogateescape")}


def day(n: float, **extra: float) -> datetime:
    """T0 + n days (+ extra timedelta fields): every test instant is exact."""
    return T0 + timedelta(days=n, **extra)


def ev(kind: str, at: datetime, event_id: str | None = None, customer: str = "c1", **fields: Any) -> Event:
    """A validated event through the real parser (the contract of `segmentation.events`)."""
    raw = {
        "event_id": event_id or f"e{next(_ids)}",
        "customer_id": customer,
        "occurred_at": at.isoformat(),
        "schema_version": 1,
        "type": kind,
        **fields,
    }
    return parse_event(raw)


def purchase(
    at: datetime, amount: str = "10.00", currency: str = "EUR", channel: str = "web", **kw: Any
) -> Event:
    return ev(
        "purchase", at, order_id=f"o{next(_ids)}", amount=amount, currency=currency, channel=channel, **kw
    )


def refund(at: datetime, amount: str, currency: str = "EUR", **kw: Any) -> Event:
    return ev("refund", at, order_id="o", amount=amount, currency=currency, **kw)


def run(
    events: Iterable[Event], definitions: Definitions = DEFAULT, state: CustomerState | None = None
) -> tuple[CustomerState, list[Transition]]:
    """Apply events in order; return the final state and every transition."""
    state = state or CustomerState.new("c1")
    out: list[Transition] = []
    for event in events:
        outcome = apply(state, event, definitions)
        state = outcome.state
        out.extend(outcome.transitions)
    return state, out


def of_grid(
    transitions: Iterable[Transition], grid: str
) -> list[tuple[str | None, str | None, datetime, str]]:
    """(from, to, effective_at, cause) of one grid's transitions, for exact list assertions."""
    return [(t.from_segment, t.to_segment, t.effective_at, t.cause) for t in transitions if t.grid == grid]


def definitions_with(**sections: Any) -> Definitions:
    """Default definitions with some top-level sections replaced (and a distinct version)."""
    from importlib import resources

    import yaml

    raw = yaml.safe_load(resources.files("segmentation").joinpath("definitions.yaml").read_text())
    raw.update(sections)
    raw.setdefault("version", "test")
    if "version" not in sections:
        raw["version"] = "test-" + "-".join(sorted(sections))
    return Definitions.from_mapping(raw)


def home_ids(prefix: str, partition: int, count: int, partitions: int = 4) -> list[str]:
    """`count` customer ids `<prefix><n>` whose partition (Kafka's murmur2 of the id, over `partitions`: the
    settings' default 4) is `partition`: the worker dead-letters a record outside its customer's partition."""
    from streams.store.partitioning import partition_for

    out: list[str] = []
    n = 0
    while len(out) < count:
        if partition_for(f"{prefix}{n}", partitions) == partition:
            out.append(f"{prefix}{n}")
        n += 1
    return out
