"""RFM grid: scores against breakpoints, the default 11-segment map, next change, map validation."""

from __future__ import annotations

from datetime import datetime

import pytest

from segmentation import CustomerState
from segmentation.config_reading import DefinitionsError
from segmentation.rfm import NO_PURCHASE, RfmConfig, cell, classify, explain, next_change, scores
from tests.unit.seg_helpers import DEFAULT, day

CFG = DEFAULT.rfm


def _state(last: float | None, orders: int = 1, gross: int = 0, refunded: int = 0) -> CustomerState:
    at = None if last is None else day(last)
    return CustomerState(
        "c1",
        first_purchase_at=at,
        last_purchase_at=at,
        orders=orders,
        gross_minor=gross,
        refunded_minor=refunded,
    )


@pytest.mark.parametrize(
    ("last", "orders", "gross", "refunded", "now", "expected"),
    [
        (None, 0, 0, 0, day(1), None),
        (0, 1, 4999, 0, day(0), (5, 1, 1)),
        (0, 2, 5000, 0, day(29, hours=23), (5, 2, 2)),
        (0, 3, 15000, 0, day(30), (4, 3, 3)),
        (0, 5, 40000, 0, day(90), (3, 4, 4)),
        (0, 8, 100000, 0, day(180), (2, 5, 5)),
        (0, 8, 100000, 0, day(365), (1, 5, 5)),
        (0, 8, 100000, 200000, day(365), (1, 5, 1)),  # net monetary never below zero
    ],
)
def test_scores(
    last: float | None,
    orders: int,
    gross: int,
    refunded: int,
    now: datetime,
    expected: tuple[int, int, int] | None,
) -> None:
    assert scores(_state(last, orders, gross, refunded), CFG, now) == expected


@pytest.mark.parametrize(
    ("rfm", "segment"),
    [
        (None, NO_PURCHASE),
        ((5, 5, 5), "champions"),
        ((5, 4, 3), "champions"),
        ((5, 4, 2), "loyal"),
        ((3, 5, 1), "loyal"),
        ((3, 3, 3), "need_attention"),
        ((4, 2, 5), "potential_loyalist"),
        ((5, 1, 1), "new"),
        ((4, 1, 3), "promising"),
        ((3, 2, 1), "about_to_sleep"),
        ((2, 5, 5), "cant_lose_them"),
        ((1, 4, 4), "cant_lose_them"),
        ((1, 4, 3), "at_risk"),
        ((2, 3, 1), "at_risk"),
        ((1, 1, 5), "lost"),
        ((1, 2, 1), "hibernating"),
        ((2, 1, 1), "hibernating"),
    ],
)
def test_default_map(rfm: tuple[int, int, int] | None, segment: str) -> None:
    assert cell(CFG, rfm) == segment


def test_default_map_has_the_classic_segments() -> None:
    assert CFG.segments == (
        "champions", "loyal", "need_attention", "potential_loyalist", "new", "promising", "about_to_sleep",
        "cant_lose_them", "at_risk", "lost", "hibernating", NO_PURCHASE,
    )  # fmt: skip
    assert len(CFG.cells) == 125


def test_next_change_skips_breakpoints_that_keep_the_segment() -> None:
    # 1 order, small M: new (R5) -> promising (R4 at day 30) -> about_to_sleep (R3 at day 90)
    state = _state(0)
    assert classify(state, CFG, day(1)) == "new"
    assert next_change(state, CFG, day(1), "new") == day(30)
    assert next_change(state, CFG, day(30), "promising") == day(90)
    # R2 (day 180) and R1 (day 365) with F1: hibernating, then lost
    assert next_change(state, CFG, day(90), "about_to_sleep") == day(180)
    assert next_change(state, CFG, day(180), "hibernating") == day(365)
    assert next_change(state, CFG, day(365), "lost") is None
    assert next_change(_state(None), CFG, day(1), NO_PURCHASE) is None


def test_next_change_when_r_changes_inside_a_segment() -> None:
    loyal = _state(0, orders=8, gross=10000)  # R5 F5 M2: loyal; R4, R3 still loyal; R2 -> at_risk
    assert classify(loyal, CFG, day(0)) == "loyal"
    assert next_change(loyal, CFG, day(0), "loyal") == day(180)


def test_explain() -> None:
    assert explain(_state(0, orders=8, gross=10000), CFG, day(40), "loyal") == {
        "rule": "R3-5 F4-5 M1-5 -> loyal",
        "r": "4",
        "f": "5",
        "m": "2",
        "days_since_last_purchase": "40",
        "orders": "8",
        "monetary_minor": "10000",
    }
    assert explain(_state(None), CFG, day(1), NO_PURCHASE) == {"rule": "no purchase yet"}


def _raw(**override: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "recency_days": [30, 90, 180, 365],
        "frequency_orders": [2, 3, 5, 8],
        "monetary": ["50", "150", "400", "1000"],
        "segments": [{"segment": "all"}],
    }
    raw.update(override)
    return raw


def test_single_catch_all_line_covers_everything() -> None:
    config = RfmConfig.from_mapping(_raw(), 2)
    assert set(config.cells) == {"all"}
    assert config.monetary_minor == (5000, 15000, 40000, 100000)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"segments": [{"segment": "top", "r": "5"}]},
            r"does not cover 100 of 125 cells: R1-F1-M1, R1-F1-M2",
        ),
        ({"segments": [{"segment": "x", "r": "4-5"}, {"segment": "y", "r": 1}]}, r"R3-F5-M5$"),
        ({"recency_days": [30, 90, 90, 365]}, "rfm.recency_days: breakpoints must be positive and strictly"),
        ({"frequency_orders": [0, 3, 5, 8]}, "rfm.frequency_orders: breakpoints must be positive"),
        ({"recency_days": [30, 90, 180]}, "expected 4 breakpoints"),
        ({"recency_days": "30"}, "rfm.recency_days: expected a list"),
        ({"recency_days": [30, 90, 180, "x"]}, r"rfm.recency_days\[3\]: expected an integer"),
        ({"monetary": ["50", "150", "400", "1000.001"]}, "more decimals than the base currency"),
        ({"monetary": ["50", "150", "400", 1000.5]}, r"rfm.monetary\[3\]: expected a decimal string"),
        ({"segments": ["champions"]}, r"rfm.segments\[0\]: expected a mapping"),
        ({"segments": [{"segment": "a", "q": "1"}]}, r"unknown keys \['q'\]"),
        ({"segments": [{"segment": "no_purchase"}]}, "reserved"),
        ({"segments": [{"segment": "a", "r": "0-5"}]}, r"range '0-5' must lie within 1-5"),
        ({"segments": [{"segment": "a", "r": "4-2"}]}, "ascending"),
        ({"segments": [{"segment": "a", "f": "x"}]}, r"\.f: expected a score or range"),
        ({"segments": [{"segment": "a", "m": [1]}]}, r"\.m: expected a score or range"),
        ({"segments": [{"r": "1-5"}]}, r"segment: expected a non-empty string"),
    ],
)
def test_config_errors(override: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        RfmConfig.from_mapping(_raw(**override), 2)
