"""Pure renderings of issue 17 item 3: money in major units (exact, half-to-even), the from x to matrix cut
to fit 100 columns, the calibrate breakpoints without Python reprs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from segmentation import Definitions
from streams.admin.calibrate import breakpoints, breakpoints_table
from streams.admin.definitions_change import matrix_lines
from streams.read.profile import kpis_of, money, money_ratio


def test_money_is_exact_with_the_currency_digits() -> None:
    assert money(32961525, "EUR").model_dump() == {"amount": "329615.25", "currency": "EUR"}
    assert money(0, "EUR").amount == "0.00"
    assert money(5, "EUR").amount == "0.05"
    assert money(500, "JPY").amount == "500"
    assert money(1250, "KWD").amount == "1.250"
    assert money(10**17 + 1, "EUR").amount == "1000000000000000.01"  # beyond a float's exact integers


def test_a_net_revenue_below_zero_is_a_negative_amount() -> None:
    """A period's or cohort's net revenue is negative when its refunds exceed its purchases (the KPIs)."""
    assert money(-11798, "EUR").amount == "-117.98"
    assert money(-5, "EUR").amount == "-0.05"
    assert money_ratio(-11798, 2, "EUR").amount == "-58.99"
    assert money_ratio(-1, 3, "EUR").amount == "0.00"  # no negative zero
    assert money_ratio(-1, 3, "JPY").amount == "0"


def test_average_basket_rounds_half_to_even_to_the_minor_unit() -> None:
    assert money_ratio(10001, 2, "EUR").amount == "50.00"  # 5000.5 cents -> 5000
    assert money_ratio(10003, 2, "EUR").amount == "50.02"  # 5001.5 cents -> 5002
    assert money_ratio(10001, 3, "EUR").amount == "33.34"
    assert money_ratio(7, 2, "JPY").amount == "4"
    kpis = kpis_of({"customers": 1, "revenue_minor": 10001, "orders": 2}, "EUR")
    assert kpis.average_basket is not None and kpis.average_basket.amount == "50.00"
    assert kpis.average_basket_minor == 5000.5  # the older field, unchanged
    assert kpis_of({"customers": 3}, "EUR").average_basket is None
    assert kpis_of({"customers": 3}).revenue is None  # no currency given: no major-unit figure invented


def test_a_wide_matrix_is_cut_into_blocks_within_100_columns() -> None:
    segments = Definitions.default().grid_segments["rfm"]
    cells = {(a, b): (i * 7 + j) % 5 * 1000 for i, a in enumerate(segments) for j, b in enumerate(segments)}
    lines = matrix_lines(cells, 100)
    assert max(map(len, lines)) <= 100
    header_cells = [c for line in lines if line.startswith("now \\ new") for c in line.split()[3:]]
    assert sorted(header_cells) == sorted(segments)  # every column once, over the blocks
    assert any(line.startswith("(columns 1-") for line in lines)
    narrow = matrix_lines({("a", "a"): 3, ("a", "b"): 0}, 100)
    assert narrow == ["now \\ new    a  b", "a            3  ."]


def test_breakpoints_table_has_no_python_reprs() -> None:
    rfm = Definitions.default().rfm
    proposal: dict[str, list[Any]] = {"recency_days": [10, 25, 94, 253], "frequency_orders": [1, 3, 6, 13]}
    proposal["monetary"] = ["57.2", "133.32", "335.23", "821.92"]
    points = breakpoints(rfm, proposal, 2)
    assert points["monetary"] == {
        "current": [format(Decimal(v).quantize(Decimal("0.01")), "f") for v in rfm.monetary],
        "proposed": ["57.20", "133.32", "335.23", "821.92"],
    }
    table = breakpoints_table(points, "EUR")
    assert "Decimal" not in table and "[" not in table and "'" not in table
    assert "recency (days)" in table and "monetary (EUR)" in table
    assert max(map(len, table.splitlines())) <= 100
