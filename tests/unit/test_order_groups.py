"""Order exports with line items: rows grouped by order id, presets (Shopify's export), currency required."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import orjson
import pytest

from segmentation import parse_event
from streams.replay.csv_orders import CsvMappingError, CsvOptions, CsvOrders, parse_mapping, read_header
from streams.replay.presets import PRESETS, csv_options
from streams.replay.pseudonyms import pseudonym

SHOPIFY = Path(__file__).resolve().parents[1] / "data" / "shopify_orders_export.csv"


def args(**over: Any) -> argparse.Namespace:
    """`segstream replay` CSV arguments with their defaults."""
    base: dict[str, Any] = dict(
        preset=None, columns=None, time_format=None, timezone="UTC", default_channel="web", currency=None,
        delimiter=",", decimal_comma=False, order_window=10_000, hash_customer_id=None, encoding="utf-8-sig",
    )  # fmt: skip
    return argparse.Namespace(**{**base, **over})


def read(path: Path, options: CsvOptions) -> tuple[list[dict[str, Any]], list[dict[str, str]], CsvOrders]:
    """(events, rejects rows, the reader) of one pass over `path`."""
    orders = CsvOrders(path, options, path.with_suffix(".rejects.csv"))
    events = [orjson.loads(value) for _, _, value in orders.keyed()]
    with path.with_suffix(".rejects.csv").open() as handle:
        rejects = list(csv.DictReader(handle))
    return events, rejects, orders


def shopify(tmp_path: Path, **over: Any) -> tuple[list[dict[str, Any]], list[dict[str, str]], CsvOrders]:
    path = tmp_path / "orders_export.csv"
    path.write_bytes(SHOPIFY.read_bytes())
    return read(path, csv_options(args(preset="shopify", **over), read_header(path)))


def test_shopify_export_becomes_one_purchase_per_order_with_items_coupons_and_refunds(tmp_path: Path) -> None:
    events, rejects, orders = shopify(tmp_path)
    alice, bob, carol = (pseudonym(e) for e in ("alice@example.com", "bob@example.com", "carol@example.com"))
    shape = [(e["type"], e["order_id"], e["customer_id"], e["amount"], e["currency"]) for e in events]
    assert shape == [
        ("purchase", "#1001", alice, "110.00", "EUR"),
        ("purchase", "#1002", bob, "77.00", "USD"),  # foreign currency kept: the core converts it
        ("purchase", "#1003", alice, "168.00", "EUR"),  # "ALICE@Example.com " is the same customer
        ("refund", "#1003", alice, "40.00", "EUR"),
        ("purchase", "#1004", carol, "25.00", "GBP"),
        ("refund", "#1004", carol, "25.00", "GBP"),
    ]
    first, second, third, refund, fourth, _ = events
    assert first["items"] == [
        {"sku": "LS-01-M", "quantity": 2, "unit_price": "45.00"},
        {"sku": "CT-02", "quantity": 1, "unit_price": "15.00"},
    ]
    assert first["occurred_at"] == "2026-01-10T09:00:00Z" and second["occurred_at"] == "2026-02-01T14:30:00Z"
    assert [e["channel"] for e in (first, second, third, fourth)] == ["web", "store", "app", "web"]
    assert [e["coupon_used"] for e in (first, second, third, fourth)] == [False, True, True, False]
    assert [i["sku"] for i in third["items"]] == ["LT-04-M", "Cotton socks (2 pack)", "GW-00"]
    assert refund["occurred_at"] == third["occurred_at"]  # the export has no refund date: the order's
    for event in events:
        parse_event(orjson.dumps(event))
    assert [(r["line"], r["reason"]) for r in rejects] == [
        ("9", "customer_id: empty"),
        ("10", "order '#1006': lines disagree on currency: line 10 has 'EUR', line 11 has 'USD'"),
        ("11", "order '#1006': lines disagree on currency: line 10 has 'EUR', line 11 has 'USD'"),
        ("12", "order '#1007': status 'voided': not a purchase (no money was taken)"),
    ]
    assert rejects[0]["Name"] == "#1005" and rejects[2]["Lineitem name"] == "Matches"
    assert (orders.rows, orders.rejected, orders.purchases, orders.refunds) == (11, 4, 4, 2)


def test_ids_depend_on_content_only_and_not_on_the_window(tmp_path: Path) -> None:
    one, _, _ = shopify(tmp_path)
    two, _, _ = shopify(tmp_path)
    narrow, _, _ = shopify(tmp_path, order_window=3)
    assert one == two == narrow
    assert len({e["event_id"] for e in one}) == 6 and all(e["event_id"].startswith("csv-") for e in one)


GENERIC = """order_id,customer_id,created_at,total,sku,quantity,unit_price
A,c1,2026-05-01T10:00:00Z,,S1,2,10.00
B,c2,2026-05-01T11:00:00Z,50,S9,1,50
A,,,,S2,1,5.50
C,c3,2026-05-02T09:00:00Z,,S3,x,1
C,c3,2026-05-02T09:00:00Z,,S4,1,1
D,c4,2026-05-03T09:00:00Z,,S5,1,3
D,c5,2026-05-03T09:00:00Z,,S6,1,3
"""


def test_generic_rows_of_one_order_need_not_be_adjacent_and_a_bad_line_rejects_its_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lines.csv"
    path.write_text(GENERIC)
    events, rejects, _ = read(path, csv_options(args(preset="generic", currency="eur"), read_header(path)))
    assert [(e["order_id"], e["customer_id"], e["amount"], e["currency"]) for e in events] == [
        ("A", "c1", "25.50", "EUR"),  # no total: 2 x 10.00 + 1 x 5.50, in the order of A's first row
        ("B", "c2", "50", "EUR"),
    ]
    assert events[0]["items"] == [
        {"sku": "S1", "quantity": 2, "unit_price": "10.00"},
        {"sku": "S2", "quantity": 1, "unit_price": "5.50"},
    ]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        ("5", "quantity: not an integer: 'x'"),
        ("6", "order 'C' rejected: line 5: quantity: not an integer: 'x'"),
        ("7", "order 'D': lines disagree on customer_id: line 7 has 'c4', line 8 has 'c5'"),
        ("8", "order 'D': lines disagree on customer_id: line 7 has 'c4', line 8 has 'c5'"),
    ]
    # a window too narrow for A's rows: its late row is rejected with the reason, never merged silently
    events, rejects, _ = read(
        path, csv_options(args(preset="generic", currency="EUR", order_window=2), read_header(path))
    )
    assert [(e["order_id"], e["amount"]) for e in events] == [("A", "20.00"), ("B", "50")]
    assert rejects[0]["line"] == "4" and "already closed" in rejects[0]["reason"]
    assert "--order-window" in rejects[0]["reason"]


def test_money_without_a_currency_column_needs_an_explicit_currency(tmp_path: Path) -> None:
    mapping = "customer_id=cust,occurred_at=date,amount=total"
    with pytest.raises(CsvMappingError, match="--currency") as refused:
        csv_options(args(columns=mapping))
    assert "base currency is never assumed" in str(refused.value)
    with pytest.raises(CsvMappingError, match="ISO 4217"):
        csv_options(args(columns=mapping, currency="EURO"))
    path = tmp_path / "o.csv"
    path.write_text("cust,date,total,cur\nc1,2026-01-01T00:00:00Z,5,\nc2,2026-01-01T00:00:00Z,7,usd\n")
    events, rejects, _ = read(path, csv_options(args(columns=mapping + ",currency=cur")))
    assert [e["currency"] for e in events] == ["USD"]
    assert [(r["line"], r["reason"]) for r in rejects] == [("2", "currency: empty, and no --currency given")]
    events, _, _ = read(path, csv_options(args(columns=mapping + ",currency=cur", currency="GBP")))
    assert [e["currency"] for e in events] == ["GBP", "USD"]  # --currency fills empty cells only


def test_presets_map_overrides_and_customer_ids(tmp_path: Path) -> None:
    with pytest.raises(CsvMappingError, match="--map or --preset"):
        csv_options(args())
    options = csv_options(args(preset="shopify", columns="customer_id=Id", hash_customer_id=False))
    assert options.columns["customer_id"] == "Id" and options.columns["order_id"] == "Name"
    assert not options.hash_customer_id and options.time_format == "%Y-%m-%d %H:%M:%S %z"
    assert csv_options(args(preset="generic", currency="EUR")).hash_customer_id is False
    assert set(PRESETS) == {"shopify", "generic"}
    assert pseudonym(" Bob@Example.com") == pseudonym("bob@example.com") != pseudonym("bob@example.org")
    assert pseudonym("bob@example.com").startswith("cust-") and len(pseudonym("x")) == 37
    with pytest.raises(CsvMappingError, match="order-window"):
        CsvOptions(parse_mapping("customer_id=a,occurred_at=b,total=c"), currency="EUR", order_window=0)
    with pytest.raises(CsvMappingError, match="at least one of amount, total, price"):
        CsvOptions(parse_mapping("customer_id=a,occurred_at=b"), currency="EUR")


def test_rows_without_an_order_id_a_negative_row_and_an_order_without_amount(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text(
        "id,cust,date,amt,qty\n"
        ",c1,2026-01-01T00:00:00Z,5,\n"  # no order id: a purchase of its own, order id = event id
        ",c1,2026-01-01T00:00:00Z,5,\n"  # the same row again: another purchase (line number in the id)
        "R,c1,2026-01-02T00:00:00Z,-2.5,\n"  # a refund of order R
        "R,,2026-01-02T00:00:00Z,-1,\n"
        "S,c2,,3,\n"
        "T,c2,2026-01-03T00:00:00Z,,2\n"
    )
    mapping = "order_id=id,customer_id=cust,occurred_at=date,amount=amt,quantity=qty"
    events, rejects, _ = read(path, csv_options(args(columns=mapping, currency="EUR")))
    assert [(e["type"], e["amount"]) for e in events] == [
        ("purchase", "5"),
        ("purchase", "5"),
        ("refund", "2.5"),
    ]
    assert events[0]["order_id"] == events[0]["event_id"] != events[1]["event_id"]
    assert events[2]["order_id"] == "R" and "items" not in events[0]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        ("5", "customer_id: empty"),
        ("6", "occurred_at: empty"),
        ("7", "order 'T': line 7 has no amount, no price, and there is no total"),
    ]
