"""CSV order import: mapping, time zones, refunds, deterministic ids, rejects with line numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from segmentation import parse_event
from streams.replay.csv_orders import CsvMappingError, CsvOptions, CsvOrders, parse_mapping

CSV = """id,cust,date,total,chan,cur,qty
A1,c1,2026-03-29 01:30:00,19.90,store,eur,2
A2,c1,2026-03-29 03:30:00,"1,5",web,EUR,1
A3,,2026-03-30 10:00:00,10,web,EUR,1
A1,c1,2026-04-01 10:00:00,-5.00,store,EUR,1
A4,c2,not a date,12,web,EUR,1
A5,c2,2026-04-02 10:00:00,12.5,fax,EUR,1
A6,c3,2026-04-03 10:00:00,7,,,
"""
MAP = "customer_id=cust,occurred_at=date,amount=total,order_id=id,channel=chan,currency=cur,quantity=qty"


def rows(path: Path, **over: object) -> tuple[list[tuple[int, str | None, bytes]], CsvOrders]:
    options = CsvOptions(parse_mapping(MAP), time_format="%Y-%m-%d %H:%M:%S", timezone="Europe/Paris", **over)  # type: ignore[arg-type]
    orders = CsvOrders(path, options, path.with_suffix(".rejects.csv"))
    return list(orders.keyed()), orders


def test_rows_become_purchases_and_refunds_with_rejects(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(CSV)
    out, orders = rows(path)
    assert [line for line, _, _ in out] == [2, 5]  # line 8 has no currency, and no --currency was given
    out, orders = rows(path, currency="EUR")
    events = [orjson.loads(v) for _, _, v in out]
    assert [line for line, _, _ in out] == [2, 5, 8]
    first, refund, defaults = events
    assert first["type"] == "purchase" and first["amount"] == "19.90" and first["channel"] == "store"
    assert first["occurred_at"] == "2026-03-29T00:30:00Z"  # Paris winter time, UTC+1
    assert first["items"] == [{"sku": "unspecified", "quantity": 2}] and first["currency"] == "EUR"
    assert refund["type"] == "refund" and refund["amount"] == "5.00" and refund["order_id"] == "A1"
    assert defaults["channel"] == "web" and defaults["currency"] == "EUR" and "items" not in defaults
    for _, _, value in out:
        parse_event(value)
    with path.with_suffix(".rejects.csv").open() as handle:
        rejects = list(csv.DictReader(handle))
    assert [r["line"] for r in rejects] == ["3", "4", "6", "7"]
    assert "amount" in rejects[0]["reason"] and "customer_id" in rejects[1]["reason"]
    assert "occurred_at" in rejects[2]["reason"] and "channel" in rejects[3]["reason"]
    assert rejects[0]["total"] == "1,5" and orders.rejected == 4 and orders.rows == 7


def test_event_ids_are_a_function_of_the_content(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(CSV)
    lines = CSV.splitlines()
    b.write_text("\n".join([lines[0], "Z9,c9,2026-01-01 00:00:00,1,web,EUR,1", *lines[1:]]) + "\n")
    ids_a = [orjson.loads(v)["event_id"] for _, _, v in rows(a)[0]]
    ids_a2 = [orjson.loads(v)["event_id"] for _, _, v in rows(a)[0]]
    ids_b = [orjson.loads(v)["event_id"] for _, _, v in rows(b)[0]]
    assert ids_a == ids_a2 and len(set(ids_a)) == len(ids_a)
    assert ids_b[1:] == ids_a  # with an order id column, a row's id does not depend on its position


def test_decimal_comma_and_bad_mapping(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(CSV)
    out, _ = rows(path, decimal_comma=True, currency="EUR")
    assert [(line, orjson.loads(v)["amount"]) for line, _, v in out] == [(3, "1.5"), (8, "7")]
    with path.with_suffix(".rejects.csv").open() as handle:
        reasons = {r["line"]: r["reason"] for r in csv.DictReader(handle)}
    # "19.90" and "-5.00" are dot decimals, not thousands groups: refused, never read as 1990 and -500
    assert "not a thousands separator" in reasons["2"] and "not a thousands separator" in reasons["5"]
    path.write_text('id,cust,date,total,chan,cur,qty\nB1,c1,2026-03-29 01:30:00,"1.234,5",web,EUR,1\n')
    assert [orjson.loads(v)["amount"] for _, _, v in rows(path, decimal_comma=True)[0]] == ["1234.5"]
    with pytest.raises(CsvMappingError, match="missing"):
        CsvOptions(parse_mapping("customer_id=cust"))
    with pytest.raises(CsvMappingError, match="time zone"):
        CsvOptions(parse_mapping(MAP), timezone="Mars/Olympus")
    with pytest.raises(CsvMappingError):
        parse_mapping("customer_id")


def test_equal_refund_rows_are_two_refunds(tmp_path: Path) -> None:
    """Two equal return lines of one order (two items of one price sent back) refund twice; the first keeps
    the id it had alone, and the same file gives the same ids again."""
    head = "id,cust,date,total,chan,cur,qty\nR1,c1,2026-03-01 10:00:00,20.00,web,EUR,2\n"
    back = "R1,c1,2026-03-05 10:00:00,-10.00,web,EUR,1\n"
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text(head + back)
    two.write_text(head + back + back)
    single = [orjson.loads(v) for _, _, v in rows(one)[0]]
    double = [orjson.loads(v) for _, _, v in rows(two)[0]]
    assert [(e["type"], e.get("amount")) for e in double] == [
        ("purchase", "20.00"),
        ("refund", "10.00"),
        ("refund", "10.00"),
    ]
    assert double[1]["event_id"] == single[1]["event_id"] != double[2]["event_id"]
    assert [orjson.loads(v)["event_id"] for _, _, v in rows(two)[0]] == [e["event_id"] for e in double]


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("2.5", "not an integer"),
        ("Infinity", "not an integer"),
        ("1e9999999", "must be from 1 to"),
        ("0", "must be from 1 to"),
    ],
)
def test_a_quantity_that_is_not_a_whole_number_of_items_is_refused(
    tmp_path: Path, cell: str, reason: str
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(f"id,cust,date,total,chan,cur,qty\nQ1,c1,2026-03-01 10:00:00,10,web,EUR,{cell}\n")
    out, orders = rows(path)
    assert out == [] and orders.rejected == 1
    with path.with_suffix(".rejects.csv").open() as handle:
        assert reason in next(csv.DictReader(handle))["reason"]


def test_a_short_row_and_a_bad_byte_reject_their_row_only(tmp_path: Path) -> None:
    """A line cut short must not become an order with defaults in its missing cells; a byte that is not
    UTF-8 rejects its row (kept byte for byte in the rejects file), and the import goes on."""
    path = tmp_path / "orders.csv"
    path.write_bytes(
        b"id,cust,date,total,chan,cur,qty\n"
        b"S1,c1,2026-03-01 10:00:00,12\n"
        b"S2,Caf\xe9,2026-03-01 11:00:00,5,web,EUR,1\n"
        b"S3,c3,2026-03-01 12:00:00,7,web,EUR,1\n"
    )
    out, orders = rows(path)
    assert [line for line, _, _ in out] == [4] and orders.rejected == 2
    rejects = path.with_suffix(".rejects.csv").read_bytes().splitlines()
    assert b"4 fields, header has 7" in rejects[1]
    assert b"not valid text" in rejects[2] and b"Caf\xe9" in rejects[2]


def test_a_long_cell_is_imported_and_one_past_the_limit_stops_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 200 kB cell (an order note) in a column not mapped made the csv module raise mid-import: the
    replay died with a traceback (exit 1). Such a row is an order like another; a cell past the limit (a
    quote never closed swallowing the rest of the file) is one clear error naming its line (exit 2)."""
    from streams.replay.sources import SourceError

    path = tmp_path / "orders.csv"
    note = "n" * 200_000
    path.write_text(
        "id,cust,date,total,chan,cur,qty,note\n"
        "N1,c1,2026-03-01 10:00:00,12,web,EUR,1,ok\n"
        f"N2,c2,2026-03-01 11:00:00,5,web,EUR,1,{note}\n"
        "N3,c3,2026-03-01 12:00:00,7,web,EUR,1,ok\n"
    )
    out, orders = rows(path)
    assert [line for line, _, _ in out] == [2, 3, 4] and orders.rejected == 0
    monkeypatch.setattr("streams.replay.csv_orders.MAX_FIELD", 100_000)
    with pytest.raises(SourceError, match=r"line 3: .*100000") as refused:
        rows(path)
    assert refused.value.exit_code == 2


def test_a_mapped_column_named_twice_in_the_header_is_refused(tmp_path: Path) -> None:
    """Two columns named `total` (say net and gross): the import silently took the last one's values. Which
    one is meant cannot be known: refused before anything is read (exit 2); a duplicated column nobody maps
    is harmless."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "id,cust,date,total,chan,cur,qty,total,note,note\nD1,c1,2026-03-01 10:00:00,10,web,EUR,1,99,a,b\n"
    )
    options = CsvOptions(parse_mapping(MAP), time_format="%Y-%m-%d %H:%M:%S", currency="EUR")
    orders = CsvOrders(path, options, tmp_path / "rejects.csv")
    with pytest.raises(CsvMappingError, match=r"'total' .*2 times") as refused:
        orders.check_header()
    assert refused.value.exit_code == 2
    path.write_text("id,cust,date,total,chan,cur,qty,note,note\nD1,c1,2026-03-01 10:00:00,10,web,EUR,1,a,b\n")
    orders.check_header()
    assert len(list(orders.keyed())) == 1


def test_a_gzip_export_is_read_as_its_csv_and_one_cut_short_is_one_clear_error(tmp_path: Path) -> None:
    """`replay orders.csv.gz` was taken for a CSV import (the name without .gz), then refused with a codec
    error on the compressed bytes (exit 2): a gzip export is read as the JSONL source reads one, and one cut
    short in transfer stops with the line it reached, as a JSONL file does."""
    import gzip

    from streams.replay.csv_orders import read_header
    from streams.replay.sources import SourceError

    plain, packed = tmp_path / "orders.csv", tmp_path / "orders.csv.gz"
    plain.write_text(CSV)
    packed.write_bytes(gzip.compress(CSV.encode()))
    assert read_header(packed) == read_header(plain)
    (expected, _), (got, orders) = rows(plain, currency="EUR"), rows(packed, currency="EUR")
    assert got == expected and orders.rejected == 4 and orders.position == orders.size
    assert packed.with_suffix(".rejects.csv").read_text() == plain.with_suffix(".rejects.csv").read_text()
    cut = tmp_path / "cut.csv.gz"
    big = CSV + "".join(f"B{n},c{n},2026-04-0{1 + n % 9} 10:00:00,{n}.5,web,EUR,1\n" for n in range(20_000))
    cut.write_bytes(gzip.compress(big.encode())[:-4000])
    with pytest.raises(SourceError, match=r"line \d+: .*gzip data cut short"):
        rows(cut, currency="EUR")


@pytest.mark.parametrize("total", ["1_000", "0x10", "Infinity", "1 000_5", "--5", "."])
def test_an_amount_python_alone_would_read_is_rejected_with_its_line(tmp_path: Path, total: str) -> None:
    """Decimal() takes "1_000" for 1000: an export never writes that, so it is a reject, never an order."""
    path = tmp_path / "orders.csv"
    path.write_text(f'id,cust,date,total,chan,cur,qty\nB1,c1,2026-03-29 01:30:00,"{total}",web,EUR,1\n')
    out, orders = rows(path)
    assert out == [] and orders.rejected == 1
    with path.with_suffix(".rejects.csv").open() as handle:
        (reject,) = csv.DictReader(handle)
    assert reject["line"] == "2" and "not a number" in reject["reason"]


@pytest.mark.parametrize(
    ("total", "amount"), [("12", "12"), ("-3.5", "3.5"), (".5", "0.5"), ("1.5E+3", "1500")]
)
def test_plain_amounts_are_still_read(tmp_path: Path, total: str, amount: str) -> None:
    """A negative amount with an order id is a refund of its absolute value."""
    path = tmp_path / "orders.csv"
    path.write_text(f"id,cust,date,total,chan,cur,qty\nB1,c1,2026-03-29 01:30:00,{total},web,EUR,1\n")
    out, _ = rows(path)
    assert [orjson.loads(v)["amount"] for _, _, v in out] == [amount]


def test_iso_times_read_in_either_case_and_naive_ones_in_the_zone(tmp_path: Path) -> None:
    """Without --time-format, RFC 3339 times (`t` and `z` allowed for `T` and `Z`) keep their offset."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "id,cust,date,total,chan,cur,qty\n"
        "B1,c1,2026-03-29t01:30:00z,10,web,EUR,1\n"
        "B2,c1,2026-03-29T01:30:00+02:00,10,web,EUR,1\n"
        "B3,c1,2026-03-29 01:30:00,10,web,EUR,1\n"
    )
    options = CsvOptions(parse_mapping(MAP), timezone="Europe/Paris")
    out = list(CsvOrders(path, options, path.with_suffix(".rejects.csv")).keyed())
    times = [orjson.loads(value)["occurred_at"] for _, _, value in out]
    assert times == ["2026-03-29T01:30:00Z", "2026-03-28T23:30:00Z", "2026-03-29T00:30:00Z"]


def test_a_time_with_no_utc_instant_is_a_reject_and_the_import_goes_on(tmp_path: Path) -> None:
    """Year 1 east of UTC, year 9999 west of it: no UTC instant. It stopped the import (OverflowError)."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "id,cust,date,total,chan,cur,qty\n"
        "B1,c1,2026-03-29T01:30:00Z,10,web,EUR,1\n"
        "B2,c1,0001-01-01T00:30:00+01:00,10,web,EUR,1\n"
        "B3,c2,0001-01-01 00:30:00,10,web,EUR,1\n"
        "B4,c2,9999-12-31T23:30:00-01:00,10,web,EUR,1\n"
        "B5,c3,2026-03-30T10:00:00Z,10,web,EUR,1\n"
    )
    options = CsvOptions(parse_mapping(MAP), timezone="Asia/Tokyo")
    orders = CsvOrders(path, options, path.with_suffix(".rejects.csv"))
    assert [line for line, _, _ in orders.keyed()] == [2, 6]
    with path.with_suffix(".rejects.csv").open() as handle:
        rejects = list(csv.DictReader(handle))
    assert [r["line"] for r in rejects] == ["3", "4", "5"]
    assert all("outside the years 1-9999 once converted to UTC" in r["reason"] for r in rejects)


@pytest.mark.parametrize("total", ["1e1000000", "-1e1000000", "1000000000000000", "-1E+15"])
def test_an_amount_of_10_to_the_15_or_more_is_a_reject_and_the_import_goes_on(
    tmp_path: Path, total: str
) -> None:
    """Lines are summed, a refund row negated: 1e1000000 overflowed Decimal and stopped the import."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "id,cust,date,total,chan,cur,qty\n"
        f"B1,c1,2026-03-29 01:30:00,{total},web,EUR,1\n"
        "B2,c2,2026-03-29 02:30:00,999999999999999.99,web,EUR,1\n"
    )
    out, orders = rows(path)
    assert orders.rejected == 1
    assert [orjson.loads(v)["amount"] for _, _, v in out] == ["999999999999999.99"]
    with path.with_suffix(".rejects.csv").open() as handle:
        (reject,) = csv.DictReader(handle)
    assert reject["line"] == "2" and "is not below 10^15" in reject["reason"]


def test_a_reject_names_its_own_line_after_blank_lines(tmp_path: Path) -> None:
    """csv's DictReader skips blank lines unseen: the reject named the first blank line, not the row's."""
    path = tmp_path / "orders.csv"
    path.write_text(
        "id,cust,date,total,chan,cur,qty\n"
        "B1,c1,2026-03-29 01:30:00,10,web,EUR,1\n"
        "\n"
        "\n"
        "B2,,2026-03-29 02:30:00,10,web,EUR,1\n"
        '"B3\nx",c3,2026-03-29 03:30:00,x,web,EUR,1\n'
        "\n"
        "B4,c4,not a date,4,web,EUR,1\n"
        "B5,c5,2026-03-29 04:30:00,10,web,EUR\n"
    )
    out, orders = rows(path)
    assert [line for line, _, _ in out] == [2]
    with path.with_suffix(".rejects.csv").open() as handle:
        assert [r["line"] for r in csv.DictReader(handle)] == ["5", "6", "9", "10"]
    assert orders.rows == 5 and orders.rejected == 4
