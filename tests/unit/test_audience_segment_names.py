"""An audience that compares a segment field with a name that is no segment of that grid is refused at load.

Such a literal can never be the customer's segment: `lifecycle == "atrisk"` (for `at_risk`) was accepted and
the audience stayed empty for ever, and `lifecycle != "lsot"` (for `lost`) was accepted and took in every
customer, lost ones included: a win-back or exclusion campaign sent to the wrong people, silently. Unknown
fields and type mismatches were refused already; names of segments were not.
"""

from __future__ import annotations

import pytest

from segmentation import DefinitionsError
from tests.unit.seg_helpers import day, definitions_with, ev, purchase, run


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('lifecycle == "atrisk"', "'atrisk' is not a segment of grid lifecycle"),
        ('lifecycle != "lsot"', "'lsot' is not a segment of grid lifecycle"),
        ('value in ("high", "Top")', "'Top' is not a segment of grid value"),
        ('region_group not in ("nord")', "'nord' is not a segment of grid region"),
        (
            'orders >= 1 and (rfm == "champion" or email == "engaged")',
            "'champion' is not a segment of grid rfm",
        ),
        ('channel == "online"', "'online' is not a segment of grid channel"),
    ],
)
def test_a_name_that_is_no_segment_of_the_grid_is_refused(rule: str, message: str) -> None:
    with pytest.raises(DefinitionsError, match=f"audiences.typo: {message}"):
        definitions_with(audiences={"typo": rule})


def test_names_of_the_grids_own_segments_load_and_match() -> None:
    definitions = definitions_with(
        audiences={
            "lapsed": 'lifecycle in ("at_risk", "lost")',
            "not_lost": 'lifecycle != "lost" and region_group != "other" and channel != "none"',
            "declared": "age_band != null",  # a segment field is never null once segmented
        },
        region={"groups": {"west": ["FR"]}},
    )
    state, _ = run([ev("profile_update", day(0), region="FR"), purchase(day(1), channel="web")], definitions)
    assert dict(state.audiences) == {"declared": "member", "lapsed": "not_member", "not_lost": "member"}
