"""Value, channel, age band, region and satisfaction grids: tables of inputs -> exact segment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from segmentation import CustomerState, channel, demographics, satisfaction, value
from segmentation.config_reading import DefinitionsError
from segmentation.grids import ASSESS, CLASSIFY, GRID_ORDER, NEXT_CHANGE
from tests.unit.seg_helpers import DEFAULT, day


@pytest.mark.parametrize(
    ("gross", "refunded", "expected"),
    [(0, 0, "none"), (1, 0, "low"), (9999, 0, "low"), (10000, 0, "medium"), (50000, 0, "high"),
     (199999, 0, "high"), (200000, 0, "top"), (200000, 200001, "none"), (60000, 20000, "medium")],
)  # fmt: skip
def test_value_tiers(gross: int, refunded: int, expected: str) -> None:
    assert (
        value.classify(CustomerState("c1", gross_minor=gross, refunded_minor=refunded), DEFAULT.value)
        == expected
    )


def test_value_explain() -> None:
    state = CustomerState("c1", gross_minor=12345)
    assert value.explain(state, DEFAULT.value, "medium") == {
        "rule": "monetary >= 100 and monetary < 500",
        "monetary_minor": "12345",
    }
    assert value.explain(state, DEFAULT.value, "top")["rule"] == "monetary >= 2000"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"tiers": []}, "at least one tier"),
        ({"tiers": ["low"]}, r"tiers\[0\]: expected a mapping"),
        ({"tiers": [{"segment": "a", "from": "1"}]}, "must start at 0"),
        ({"tiers": [{"segment": "a", "from": "0"}, {"segment": "b", "from": "0"}]}, "strictly ascending"),
        ({"tiers": [{"segment": "a", "from": "0"}, {"segment": "a", "from": "1"}]}, "unique"),
        ({"tiers": [{"segment": "a", "from": "abc"}]}, "not a decimal number"),
        ({"tiers": [{"segment": "a", "from": "NaN"}]}, "not a finite number"),
    ],
)
def test_value_config_errors(raw: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        value.ValueConfig.from_mapping(raw, 2)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((0, 0, 0, 0), "none"),
        ((1, 0, 0, 0), "web"),
        ((1, 1, 0, 0), "store"),  # tie: store listed first in tie_order
        ((2, 1, 2, 0), "web"),
        ((0, 0, 3, 3), "app"),
        ((0, 0, 0, 1), "phone"),
    ],
)
def test_channel(counts: tuple[int, int, int, int], expected: str) -> None:
    web, store, app, phone = counts
    state = CustomerState("c1", channel_web=web, channel_store=store, channel_app=app, channel_phone=phone)
    assert channel.classify(state, DEFAULT.channel) == expected


def test_channel_tie_order_is_configurable_and_validated() -> None:
    config = channel.ChannelConfig.from_mapping({"tie_order": ["phone", "app", "web", "store"]})
    assert channel.classify(CustomerState("c1", channel_web=1, channel_phone=1), config) == "phone"
    with pytest.raises(DefinitionsError, match="exactly once"):
        channel.ChannelConfig.from_mapping({"tie_order": ["web", "web", "app", "phone"]})


def test_channel_explain() -> None:
    state = CustomerState("c1", channel_web=2)
    assert channel.explain(state, DEFAULT.channel, "web") == {
        "purchases_web": "2",
        "purchases_store": "0",
        "purchases_app": "0",
        "purchases_phone": "0",
        "rule": "most purchases; ties broken in order store > web > app > phone",
    }
    assert channel.explain(CustomerState("c1"), DEFAULT.channel, "none")["rule"] == "no purchase yet"


@pytest.mark.parametrize(
    ("birth_year", "now", "expected"),
    [
        (None, day(0), "unknown"),
        (2002, datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "under_25"),
        (2001, datetime(2026, 1, 1, tzinfo=UTC), "age_25_34"),
        (2001, datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "under_25"),
        (1961, datetime(2026, 6, 1, tzinfo=UTC), "age_65_plus"),
        (2030, datetime(2026, 6, 1, tzinfo=UTC), "under_25"),
        (1980, datetime(2026, 6, 1, tzinfo=UTC), "age_45_54"),
    ],
)
def test_age_band(birth_year: int | None, now: datetime, expected: str) -> None:
    assert (
        demographics.age_band(CustomerState("c1", birth_year=birth_year), DEFAULT.age_band, now) == expected
    )


@pytest.mark.parametrize(
    ("birth_year", "now", "expected"),
    [
        (None, day(0), None),
        (2002, datetime(2026, 3, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (2001, datetime(2026, 3, 1, tzinfo=UTC), datetime(2036, 1, 1, tzinfo=UTC)),
        (1950, datetime(2026, 3, 1, tzinfo=UTC), None),
    ],
)
def test_age_band_next_change(birth_year: int | None, now: datetime, expected: datetime | None) -> None:
    state = CustomerState("c1", birth_year=birth_year)
    assert demographics.age_band_next_change(state, DEFAULT.age_band, now) == expected


def test_age_band_explain() -> None:
    cfg, now = DEFAULT.age_band, datetime(2026, 3, 1, tzinfo=UTC)
    assert demographics.age_band_explain(CustomerState("c1", birth_year=1990), cfg, now, "age_35_44") == {
        "rule": "age >= 35 and age < 45"
    }
    assert demographics.age_band_explain(CustomerState("c1", birth_year=2010), cfg, now, "under_25")[
        "rule"
    ] == ("age < 25")
    assert demographics.age_band_explain(CustomerState("c1", birth_year=1940), cfg, now, "age_65_plus")[
        "rule"
    ] == ("age >= 65")
    assert demographics.age_band_explain(CustomerState("c1"), cfg, now, "unknown") == {
        "rule": "no birth year declared"
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"bands": [{"segment": "a"}]}, "at least two bands"),
        ({"bands": ["a", {"segment": "b"}]}, r"bands\[0\]: expected a mapping"),
        ({"bands": [{"segment": "a", "below": 30}, {"segment": "b", "below": 40}]}, "open-ended"),
        ({"bands": [{"segment": "a", "below": "30"}, {"segment": "b"}]}, r"below: expected an integer"),
        (
            {"bands": [{"segment": "a", "below": 30}, {"segment": "b", "below": 20}, {"segment": "c"}]},
            "ascending",
        ),
        ({"bands": [{"segment": "a", "below": 30}, {"segment": "unknown"}]}, "not 'unknown'"),
    ],
)
def test_age_band_config_errors(raw: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        demographics.AgeBandConfig.from_mapping(raw)


@pytest.mark.parametrize(
    ("region", "expected"),
    [(None, "unknown"), ("SE", "north"), ("fr", "west"), ("US", "other"), ("NO", "north")],
)
def test_region(region: str | None, expected: str) -> None:
    assert demographics.region_group(CustomerState("c1", region=region), DEFAULT.region) == expected


def test_region_explain() -> None:
    cfg = DEFAULT.region
    assert demographics.region_explain(CustomerState("c1", region="SE"), cfg, "north") == {
        "rule": "region in group north"
    }  # the group, never the declared code (personal data)
    assert demographics.region_explain(CustomerState("c1", region="US"), cfg, "other")["rule"] == (
        "declared region in no configured group"
    )
    assert demographics.region_explain(CustomerState("c1"), cfg, "unknown") == {"rule": "no region declared"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"groups": {"north": [False]}}, "quote NO"),
        ({"groups": {"other": ["SE"]}}, "other than other/unknown"),
        ({"groups": {"north": "SE"}}, "expected a list"),
        ({"groups": {"north": ["SE"], "south": ["se"]}}, "already in group 'north'"),
        ({"groups": ["SE"]}, "region.groups: expected a mapping"),
    ],
)
def test_region_config_errors(raw: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        demographics.RegionConfig.from_mapping(raw)


@pytest.mark.parametrize(
    ("score", "expected"),
    [(None, "unknown"), (0, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"), (9, "promoter"),
     (10, "promoter")],
)  # fmt: skip
def test_satisfaction(score: int | None, expected: str) -> None:
    assert satisfaction.classify(CustomerState("c1", survey_score=score), DEFAULT.satisfaction) == expected


def test_satisfaction_explain_and_validation() -> None:
    cfg = DEFAULT.satisfaction
    assert satisfaction.explain(CustomerState("c1", survey_score=7), cfg, "passive") == {
        "rule": "6 < survey_score <= 8",
        "survey_score": "7",
    }
    assert satisfaction.explain(CustomerState("c1"), cfg, "unknown") == {"rule": "no survey answer yet"}
    with pytest.raises(DefinitionsError, match="detractor_max < passive_max"):
        satisfaction.SatisfactionConfig.from_mapping({"detractor_max": 8})


def test_value_explain_keeps_the_first_tier_of_a_repeated_name() -> None:
    """The rule texts are built once per config; `segments.index` (the first tier) decided before."""
    from decimal import Decimal

    cfg = value.ValueConfig(("a", "b", "a"), (Decimal(0), Decimal(1), Decimal(2)), (0, 100, 200))
    assert cfg.rules == {"a": "monetary >= 0 and monetary < 1", "b": "monetary >= 1 and monetary < 2"}


def _states() -> list[CustomerState]:
    """States over every grid's branches: no data, buyers at several ages, emailed, declared, surveyed."""
    states = [CustomerState("c1")]
    for n, (last, first) in enumerate([(day(0), day(0)), (day(-40), day(-100)), (day(-120), day(-300))]):
        states.append(
            CustomerState(
                "c1",
                first_purchase_at=first,
                last_purchase_at=last,
                orders=1 + n * 3,
                gross_minor=5000 * n**3,
                channel_store=n,
                channel_web=1,
                reactivated_at=last if n == 1 else None,
                emails_sent=n,
                email_open_score=float(n * 2),
                email_click_score=0.5,
                email_scores_at=day(-n * 10),
                email_opens=n,
                birth_year=1960 + n * 20,
                region=("FR", "XX", None)[n],
                survey_score=(None, 3, 10)[n],
                unsubscribed=n == 2,
            )
        )
    return states


@pytest.mark.parametrize("grid", GRID_ORDER)
def test_assess_is_classify_then_next_change(grid: str) -> None:
    """ASSESS (the hot path's one call per grid) must give exactly CLASSIFY and NEXT_CHANGE."""
    for state in _states():
        for now in (day(0), day(45), day(400), datetime(2031, 6, 1, tzinfo=UTC)):
            segment = CLASSIFY[grid](state, DEFAULT, now)
            foresee = NEXT_CHANGE.get(grid)
            due = foresee(state, DEFAULT, now, segment) if foresee and segment is not None else None
            assert ASSESS[grid](state, DEFAULT, now) == (segment, due), (grid, state, now)
