"""Export columns and the netting of a period's transitions (pure parts of streams/read/export.py and
changes.py; the end-to-end proofs run on real Kafka and Redis in tests/integration/test_export*.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from streams.read.changes import ChangesError, net_changes, parse_cursor
from streams.read.columns import DEFAULT_COLUMNS, ColumnError, catalogue, parse_columns
from streams.read.export import Row, encode_rows

KNOWN = catalogue(["lifecycle", "rfm", "value", "audience:vip"])


def rows_of(columns: str, raw: dict[str, str], declared: bool = False, fmt: str = "csv") -> bytes:
    chosen = parse_columns(columns, KNOWN, declared)
    fields = [f for c in chosen for f in c.fields]

    async def chunks() -> AsyncIterator[list[Row]]:
        yield [("c1", [raw.get(f) for f in fields])]

    async def collect() -> bytes:
        return b"".join([b async for b in encode_rows(chunks(), chosen, fmt)])  # type: ignore[arg-type]

    return asyncio.run(collect())


def test_values_are_for_people_money_in_major_units_times_in_utc() -> None:
    raw = {"monetary_minor": "32961525", "currency": "EUR", "last_purchase_at": "2026-03-01T10:00:00+00:00",
           "rfm:r": "4", "email:unsubscribed": "1", "segment:audience:vip": "member"}  # fmt: skip
    columns = "customer_id,net,currency,last_purchase_at,rfm:r,rfm:f,email:unsubscribed,segment:audience:vip"
    assert rows_of(columns, raw) == (
        b"customer_id,net,currency,last_purchase_at,rfm:r,rfm:f,email:unsubscribed,segment:audience:vip\n"
        b"c1,329615.25,EUR,2026-03-01T10:00:00Z,4,,true,member\n"
    )
    line = orjson.loads(rows_of(columns, raw, fmt="jsonl"))
    assert line == {
        "customer_id": "c1",
        "net": {"amount": "329615.25", "currency": "EUR"},
        "currency": "EUR",
        "last_purchase_at": "2026-03-01T10:00:00Z",
        "rfm:r": 4,
        "rfm:f": None,
        "email:unsubscribed": True,
        "segment:audience:vip": "member",
    }


def test_default_columns_and_errors() -> None:
    assert [c.name for c in parse_columns(None, KNOWN, False)] == list(DEFAULT_COLUMNS)
    with pytest.raises(ColumnError, match="unknown column\\(s\\) 'nett'") as unknown:
        parse_columns("customer_id,nett", KNOWN, False)
    assert not unknown.value.forbidden
    with pytest.raises(ColumnError, match="named twice"):
        parse_columns("net,net", KNOWN, False)
    with pytest.raises(ColumnError, match="birth_year hold declared personal data") as declared:
        parse_columns("customer_id,birth_year", KNOWN, False)
    assert declared.value.forbidden
    assert [c.name for c in parse_columns("birth_year", KNOWN, True)] == ["birth_year"]


def t(
    cid: str, frm: str | None, to: str | None, at: str, tid: str, grid: str = "lifecycle"
) -> dict[str, Any]:
    return {"id": tid, "customer_id": cid, "grid": grid, "from_segment": frm, "to_segment": to,
            "effective_at": at + "+00:00"}  # fmt: skip


def test_netting_counts_a_repeated_id_once_and_cancels_round_trips() -> None:
    log = [
        t("a", None, "new", "2026-01-01T00:00:00", "1"),  # enters
        t("b", "new", "active", "2026-01-02T00:00:00", "2"),  # leaves
        t("c", None, "new", "2026-01-03T00:00:00", "3"),
        t("c", "new", "active", "2026-02-03T00:00:00", "4"),  # in and out: nothing
        t("c", None, "new", "2026-01-03T00:00:00", "3"),  # a stale copy after the exit: ignored
        t("d", "new", None, "2026-01-04T00:00:00", "5"),  # erased: leaves to none
        t("e", "active", "at_risk", "2026-01-05T00:00:00", "6"),  # never touches `new`
        t("f", "new", "x", "2026-01-05T00:00:00", "7", grid="rfm"),  # another grid
    ]
    changes = net_changes(log, "lifecycle", "new")
    assert [(c.customer_id, c.change, c.from_segment, c.to_segment, c.at) for c in changes] == [
        ("b", "left", "new", "active", "2026-01-02T00:00:00Z"),
        ("d", "left", "new", None, "2026-01-04T00:00:00Z"),
        ("a", "entered", None, "new", "2026-01-01T00:00:00Z"),
    ]  # `left` rows first (tests/unit/test_changes_erasure.py)


def test_cursor_names_every_partition_in_ascii_digits() -> None:
    assert parse_cursor("1:20,0:7", [0, 1]) == {0: 7, 1: 20}
    for bad in ("0:1", "0:1,1:x", "0:²,1:2", "", "0-1,1-2", "0:1,0:2,1:3"):
        with pytest.raises(ChangesError):
            parse_cursor(bad, [0, 1])
