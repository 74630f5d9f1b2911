"""Day counts, ages and instants beyond what a date can hold are refused at load with one line naming the key.

`lifecycle.lost_after_days: 1000000000` or an RFM recency breakpoint of that size ended loading in an
OverflowError traceback (timedelta holds at most 999,999,999 days), as did an `earliest_event_time` whose UTC
form falls before year 1. An age band bound of 10000 was accepted, and then every profile update declaring a
birth year raised ValueError inside `apply` (the band's next change, 1 January of birth year + bound, is
past year 9999): each one a dead letter, so no customer ever got an age band.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from segmentation import DefinitionsError
from tests.unit.seg_helpers import day, definitions_with, ev, run

RAW = yaml.safe_load((Path(__file__).resolve().parents[2] / "segmentation" / "definitions.yaml").read_text())
LIFECYCLE, RFM = RAW["lifecycle"], RAW["rfm"]


def _bands(bound: int) -> dict[str, Any]:
    return {
        "bands": [{"segment": "young", "below": 30}, {"segment": "grown", "below": bound}, {"segment": "old"}]
    }


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"lifecycle": {**LIFECYCLE, "lost_after_days": 1_000_000_000}}, r"lifecycle: .* at most 36500 days"),
        ({"lifecycle": {**LIFECYCLE, "lost_after_days": 36_501}}, r"lifecycle: .* at most 36500 days"),
        (
            {"rfm": {**RFM, "recency_days": [30, 90, 180, 1_000_000_000]}},
            r"rfm.recency_days: .* at most 36500",
        ),
        ({"age_band": _bands(10_000)}, r"age_band.bands\[1\].below: .* at most 200"),
        ({"earliest_event_time": "0001-01-01T00:00:00+14:00"}, r"earliest_event_time: .* out of range"),
    ],
    ids=["lost-huge", "lost-century", "recency-huge", "age-bound", "earliest"],
)
def test_out_of_range_days_ages_and_instants_are_refused(sections: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        definitions_with(**sections)


def test_the_largest_bounds_allowed_still_segment() -> None:
    definitions = definitions_with(
        lifecycle={**LIFECYCLE, "lost_after_days": 36_500},
        rfm={**RFM, "recency_days": [30, 90, 180, 36_500]},
        age_band=_bands(200),
        earliest_event_time="0001-01-02T00:00:00+14:00",
    )
    state, _ = run([ev("profile_update", day(0), birth_year=1990)], definitions)
    assert state.seg_age_band == "grown"
    assert state.due_age_band is not None and state.due_age_band.year == 2190
