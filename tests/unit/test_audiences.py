"""Audiences: rule grids over the allow-list, exact `within` expiry, injection payloads refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from segmentation import DefinitionsError, advance, apply
from segmentation.audiences import FIELDS, explain, fades_only, getters, values
from segmentation.rules import FieldType, parse_rule
from tests.unit.seg_helpers import DEFAULT, day, definitions_with, ev, of_grid, purchase, refund, run


def test_vip_recent_joins_on_value_and_leaves_exactly_when_the_window_ends() -> None:
    state, transitions = run([purchase(day(0), "600.00", event_id="big")])
    assert of_grid(transitions, "audience:vip_recent") == [(None, "member", day(0), "big")]
    assert state.due_audiences == day(60)
    outcome = advance(state, day(60), DEFAULT)
    assert of_grid(outcome.transitions, "audience:vip_recent") == [("member", "not_member", day(60), "time")]
    assert outcome.state.due_audiences is None


def test_win_back_follows_lifecycle_changes_by_time_and_refund_changes_value_audience() -> None:
    state, _ = run([purchase(day(0), "600.00")])
    outcome = advance(state, day(90), DEFAULT)
    assert of_grid(outcome.transitions, "audience:win_back") == [("not_member", "member", day(90), "time")]
    after = apply(outcome.state, ev("email_unsubscribe", day(91), event_id="u"), DEFAULT)
    assert of_grid(after.transitions, "audience:win_back") == [("member", "not_member", day(91), "u")]
    state, transitions = run([purchase(day(0), "600.00"), refund(day(1), "200.00", event_id="r")])
    assert of_grid(transitions, "audience:vip_recent")[-1] == ("member", "not_member", day(1), "r")


def test_explain_shows_rule_and_values() -> None:
    _, transitions = run([purchase(day(0), "600.00")])
    vip = next(t for t in transitions if t.grid == "audience:vip_recent")
    assert dict(vip.why) == {
        "rule": 'value in ("high", "top") and last_purchase_at within 60 days',
        "last_purchase_at": day(0).isoformat(),
        "value": "high",
    }
    custom = definitions_with(audiences={"no_region": "region == null and monetary > 1"})
    _, transitions = run([purchase(day(0), "600.00")], custom)
    assert dict(transitions[-1].why) == {
        "rule": "region == null and monetary > 1",
        "monetary": "600.00",
        "region": "null",
    }


def test_every_allow_listed_field_can_be_read() -> None:
    state, _ = run(
        [purchase(day(0), "100.00"), purchase(day(1), "50.00"), ev("profile_update", day(2), region="SE")]
    )
    plain = [
        name for name, kind in FIELDS.items() if kind is not FieldType.FALLING
    ]  # CLV's: test_clv_audiences
    rule = parse_rule("everything", " and ".join(f"{name} != null" for name in plain), FIELDS)
    read = values(state, rule, Decimal("0.01"))
    assert set(read) == set(plain)
    assert read["average_basket"] == Decimal("75.00")
    assert read["monetary"] == Decimal("150.00")
    assert read["region_group"] == "north"
    assert read["lifecycle_since"] == day(0)


def test_average_basket_is_null_without_purchase() -> None:
    state, _ = run([ev("web_visit", day(0))])
    rule = parse_rule("basket", "average_basket > 10", FIELDS)
    assert values(state, rule, Decimal("0.01")) == {"average_basket": None}


def test_allow_list_types() -> None:
    assert FIELDS["last_purchase_at"] is FieldType.DATETIME
    assert FIELDS["unsubscribed"] is FieldType.BOOL
    assert FIELDS["lifecycle"] is FieldType.STRING
    assert FIELDS["orders"] is FieldType.NUMBER
    assert "age" not in FIELDS  # changes with time alone without a `within`: deliberately absent


@pytest.mark.parametrize(
    "payload",
    [
        '__import__("os").system("id")',
        "orders.__class__ == 1",
        "eval('1')",
        "orders >= 1; import os",
        "${jndi:ldap://x}",
        'customer_id == "x"',
        "orders >= 1 or __builtins__ == null",
        "lambda: 1",
        "script::Runtime.getRuntime().exec('id')",
    ],
)
def test_injection_payloads_are_rejected_at_load_naming_the_rule(payload: str) -> None:
    with pytest.raises(DefinitionsError, match=r"audiences\.evil: rule 'evil'"):
        definitions_with(audiences={"evil": payload})


@pytest.mark.parametrize(
    ("audiences", "message"),
    [
        ({"Bad-Name": "orders > 1"}, "lower-case identifiers"),
        ({"ok": 3}, "expected the rule as a string"),
        ({"typed": 'orders == "many"'}, "type mismatch"),
        ({"unknown": "age > 30"}, "unknown field 'age'"),
    ],
)
def test_audience_definition_errors(audiences: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        definitions_with(audiences=audiences)


def test_not_within_joins_exactly_when_the_window_ends() -> None:
    dormant = definitions_with(audiences={"dormant": "not (last_seen_at within 30 days)"})
    state, transitions = run([ev("web_visit", day(0), event_id="v")], dormant)
    assert of_grid(transitions, "audience:dormant") == [(None, "not_member", day(0), "v")]
    assert state.next_due_at == day(30)
    outcome = advance(state, day(40), dormant)
    assert of_grid(outcome.transitions, "audience:dormant") == [("not_member", "member", day(30), "time")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("last_seen_at within 3 days", True),
        ("orders > 1", True),
        ("not (last_seen_at within 3 days)", False),
        ("not (orders > 1 or last_seen_at within 3 days)", False),
        ("not not (last_seen_at within 3 days)", True),
        ("orders > 1 and (last_seen_at within 3 days or first_seen_at within 1 days)", True),
        ("orders > 1 and not (last_seen_at within 3 days)", False),
    ],
)
def test_fades_only(text: str, expected: bool) -> None:
    assert fades_only(parse_rule("r", text, FIELDS).expr) is expected


def test_explain_with_precomputed_readers_is_the_same_in_field_name_order() -> None:
    rule = parse_rule("r", 'region == "FR" and orders > 1 and last_purchase_at within 9 days', FIELDS)
    state, _ = run([purchase(day(0)), ev("profile_update", day(1), region="FR")])
    assert state.clock is not None
    why = explain(state, rule, DEFAULT.scale, state.clock)
    assert list(why) == ["rule", "last_purchase_at", "orders", "region"]
    assert why["region"] == "declared"  # personal data: whether it was declared, never the value
    assert explain(state, rule, DEFAULT.scale, state.clock, getters(rule)) == why


def test_region_audiences_read_codes_as_the_region_grid_does() -> None:
    """A declared "fr" is in the region grid's group of "FR", so an audience on "FR" has it too."""
    custom = definitions_with(audiences={"france": 'region == "FR"', "nordics": 'region in ("SE", "DK")'})
    for declared, member in (("fr", "france"), ("se", "nordics"), ("Dk", "nordics")):
        state, _ = run([ev("profile_update", day(0), region=declared)], custom)
        segments = dict(state.audiences)
        assert segments[member] == "member", declared
        assert state.seg_region in ("west", "north")
        assert state.region == declared  # the declared value is kept as declared


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('region == "fr"', "write 'FR', not 'fr'"),
        ('region in ("SE", "dk")', "write 'DK', not 'dk'"),
        ('orders > 1 and not (region != "Fr")', "write 'FR', not 'Fr'"),
    ],
)
def test_a_lower_case_region_code_in_a_rule_is_refused(rule: str, message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        definitions_with(audiences={"r": rule})
