"""Targeting-rule language: grammar, validation, null semantics, time windows and hostile input."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from segmentation import rule_fields, rule_text, rule_windows, rules, rules_syntax
from segmentation.rules import FieldType, Rule, RuleError, parse_rule, to_text
from segmentation.rules_syntax import And, Compare, Membership, Node, Not, Or, Within

T = FieldType
FIELDS: dict[str, FieldType] = {
    "orders": T.NUMBER,
    "monetary": T.NUMBER,
    "birth_year": T.NUMBER,
    "region": T.STRING,
    "email": T.STRING,
    "lifecycle": T.STRING,
    "gender": T.STRING,
    "email_opted_in": T.BOOL,
    "last_purchase_at": T.DATETIME,
    "first_purchase_at": T.DATETIME,
}
ALLOWED = ", ".join(sorted(FIELDS))
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def parse(text: str) -> Rule:
    return parse_rule("r", text, FIELDS)


# --- grammar -------------------------------------------------------------------------------------------

GRAMMAR = [
    ("orders >= 3", Compare("orders", ">=", 3)),
    ("orders == 3", Compare("orders", "==", 3)),
    ("orders != 3", Compare("orders", "!=", 3)),
    ("orders < 3", Compare("orders", "<", 3)),
    ("orders <= 3", Compare("orders", "<=", 3)),
    ("orders > -3", Compare("orders", ">", -3)),
    ("orders>=3", Compare("orders", ">=", 3)),
    ("monetary >= 500.50", Compare("monetary", ">=", Decimal("500.50"))),
    ("monetary < -0.5", Compare("monetary", "<", Decimal("-0.5"))),
    ('region == "north"', Compare("region", "==", "north")),
    ("region == 'north'", Compare("region", "==", "north")),
    (r'region == "a\"b\'c\\d"', Compare("region", "==", "a\"b'c\\d")),
    (r"region == 'it\'s'", Compare("region", "==", "it's")),
    ('region == "é ()"', Compare("region", "==", "é ()")),
    ("email_opted_in == true", Compare("email_opted_in", "==", True)),
    ("email_opted_in != FALSE", Compare("email_opted_in", "!=", False)),
    ("birth_year != null", Compare("birth_year", "!=", None)),
    ("last_purchase_at == Null", Compare("last_purchase_at", "==", None)),
    ('region in ("north", "west")', Membership("region", ("north", "west"))),
    ('gender not in ("f")', Membership("gender", ("f",), negated=True)),
    ("orders IN (1, 2.5)", Membership("orders", (1, Decimal("2.5")))),
    ("orders NOT IN (1)", Membership("orders", (1,), negated=True)),
    ("last_purchase_at within 30 days", Within("last_purchase_at", 30, "days")),
    ("last_purchase_at within 1 day", Within("last_purchase_at", 1, "days")),
    ("last_purchase_at WITHIN 12 Hours", Within("last_purchase_at", 12, "hours")),
    ("last_purchase_at within 1 hour", Within("last_purchase_at", 1, "hours")),
    ("not orders >= 3", Not(Compare("orders", ">=", 3))),
    ("not not orders >= 3", Not(Not(Compare("orders", ">=", 3)))),
    ("((orders >= 3))", Compare("orders", ">=", 3)),
    (
        "orders >= 3 and monetary > 100",
        And((Compare("orders", ">=", 3), Compare("monetary", ">", 100))),
    ),
    (
        'region in ("north", "west") and not email == "unsubscribed"',
        And((Membership("region", ("north", "west")), Not(Compare("email", "==", "unsubscribed")))),
    ),
    (
        '(lifecycle == "at_risk" OR lifecycle == "lost") And monetary >= 500.50',
        And(
            (
                Or((Compare("lifecycle", "==", "at_risk"), Compare("lifecycle", "==", "lost"))),
                Compare("monetary", ">=", Decimal("500.50")),
            )
        ),
    ),
    (
        "orders > 1 and orders > 2 and orders > 3 and orders > 4",
        And(tuple(Compare("orders", ">", n) for n in (1, 2, 3, 4))),
    ),
    (
        "\torders > 1\nor\r\norders > 2  or orders > 3",
        Or(tuple(Compare("orders", ">", n) for n in (1, 2, 3))),
    ),
]


@pytest.mark.parametrize(("text", "expected"), GRAMMAR, ids=[g[0] for g in GRAMMAR])
def test_every_grammar_form_parses_to_its_ast(text: str, expected: Node) -> None:
    rule = parse(text)
    assert rule.expr == expected
    assert rule.name == "r"
    assert rule.text == text
    assert parse(to_text(expected)).expr == expected


def test_precedence_is_not_then_and_then_or() -> None:
    # Left-to-right reading would give (T or T) and F = False; "and" binding tighter gives True.
    rule = parse("orders >= 3 or orders >= 1 and orders >= 5")
    assert rule.expr == Or(
        (Compare("orders", ">=", 3), And((Compare("orders", ">=", 1), Compare("orders", ">=", 5))))
    )
    assert rule.evaluate({"orders": 4}, NOW) is True
    # "not" binds tighter than "and": (not F) and F = False, whereas not (F and F) would be True.
    rule = parse("not orders >= 3 and orders >= 1")
    assert rule.expr == And((Not(Compare("orders", ">=", 3)), Compare("orders", ">=", 1)))
    assert rule.evaluate({"orders": 0}, NOW) is False
    assert parse("not (orders >= 3 and orders >= 1)").evaluate({"orders": 0}, NOW) is True


def test_rule_metadata_equality_and_canonical_text() -> None:
    rule = parse('orders >= 3 AND region IN ("a")  or last_purchase_at within 1 DAYS')
    assert rule.fields == frozenset({"orders", "region", "last_purchase_at"})
    assert rule.canonical_text == 'orders >= 3 and region in ("a") or last_purchase_at within 1 day'
    assert rule == parse('orders >= 3 AND region IN ("a")  or last_purchase_at within 1 DAYS')
    assert hash(rule) == hash(parse(rule.text))
    assert to_text(Compare("monetary", "==", Decimal("1E-7"))) == "monetary == 0.0000001"
    assert "predicate" not in repr(rule)


# --- validation ----------------------------------------------------------------------------------------

INVALID = [
    ("ordres >= 3", f"unknown field 'ordres' (allowed: {ALLOWED})"),
    ("orders >= 1 and __class__ == 1", f"unknown field '__class__' (allowed: {ALLOWED})"),
    ('orders == "3"', "type mismatch: NUMBER field 'orders' compared with string \"3\""),
    ("orders == true", "type mismatch: NUMBER field 'orders' compared with boolean true"),
    ("region == 3", "type mismatch: STRING field 'region' compared with number 3"),
    ('region in ("a", 3.5)', "type mismatch: STRING field 'region' compared with number 3.5"),
    ("email_opted_in == 1", "type mismatch: BOOL field 'email_opted_in' compared with number 1"),
    ('email_opted_in != "yes"', "type mismatch: BOOL field 'email_opted_in' compared with string \"yes\""),
    ('region < "m"', "operator '<' is not allowed on STRING field 'region'"),
    ("email_opted_in >= true", "operator '>=' is not allowed on BOOL field 'email_opted_in'"),
    ("orders within 3 days", "'within' needs a DATETIME field, 'orders' is NUMBER"),
    ("region within 3 hours", "'within' needs a DATETIME field, 'region' is STRING"),
    (
        'last_purchase_at == "2026-01-01"',
        "DATETIME field 'last_purchase_at' can only be compared with null or used with 'within'",
    ),
    ("last_purchase_at > 3", "DATETIME field 'last_purchase_at' can only be compared with null or used"),
    ('last_purchase_at in ("x")', "DATETIME field 'last_purchase_at' can only be compared with null"),
    ("orders > null", "operator '>' cannot be used with null (use == or !=)"),
    ("region <= null", "operator '<=' cannot be used with null (use == or !=)"),
    ('region in ("a", null)', "null is not allowed in an 'in' list (use == null)"),
    ("", "rule text is empty"),
    (" \t\n", "rule text is empty"),
    ("orders >= 1 or " * 133 + "orders >= 1", "rule text is 2006 characters long (limit 2000)"),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[i[1][:40] for i in INVALID])
def test_validation_errors_name_the_rule_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("vip", text, FIELDS)
    assert str(caught.value).startswith(f"rule 'vip': {message}")
    assert caught.value.rule == "vip"
    assert caught.value.column is None
    assert isinstance(caught.value, ValueError)


SYNTAX = [
    ("orders >=", 10, "expected a literal (string, number, true, false or null), found end of input"),
    ("orders >= orders", 11, "expected a literal (string, number, true, false or null), found 'orders'"),
    ("orders = 3", 8, "unexpected '=' (operators are == != < <= > >=)"),
    ("orders ! 3", 8, "unexpected '!' (operators are == != < <= > >=)"),
    ("(orders >= 3", 13, "expected ')', found end of input"),
    ("orders >= 3)", 12, "expected 'and', 'or' or end of input, found ')'"),
    ('region == "a" "b"', 15, "expected 'and', 'or' or end of input, found '\"b\"'"),
    ("orders >= 3 and", 16, "expected a field name, found end of input"),
    ("and orders >= 3", 1, "expected a field name, found 'and'"),
    ("1 == 1", 1, "expected a field name, found '1'"),
    ("()", 2, "expected a field name, found ')'"),
    ("not", 4, "expected a field name, found end of input"),
    ("Orders >= 3", 1, "field names are lower-case letters, digits and '_', found 'Orders'"),
    (
        "region",
        7,
        "expected an operator, '(', 'in', 'not in' or 'within' after field 'region', found end of input",
    ),
    ('region not ("a")', 12, "expected 'in' after 'not', found '('"),
    ('region in "a"', 11, "expected '(' to open the 'in' list, found '\"a\"'"),
    ("region in ()", 12, "expected a literal (string, number, true, false or null), found ')'"),
    ('region in ("a",)', 16, "expected a literal (string, number, true, false or null), found ')'"),
    ('region in ("a" "b")', 16, "expected ',' or ')', found '\"b\"'"),
    ('region == "abc', 11, "unterminated string"),
    ("region == 'abc\"", 11, "unterminated string"),
    (r'region == "a\nb"', 13, r"invalid escape '\\n' (only \" \' \\)"),
    ('region == "a\\', 13, r"invalid escape '\\' (only \" \' \\)"),
    ("monetary > 1.", 14, "expected digits after the decimal point"),
    ("monetary > .5", 12, "unexpected character '.'"),
    ("monetary > 1.2.3", 15, "unexpected character '.'"),
    ("orders > 1e5", 11, "expected 'and', 'or' or end of input, found 'e5'"),
    ("last_purchase_at within 1.5 days", 25, "expected a positive whole number after 'within', found '1.5'"),
    ("last_purchase_at within 0 days", 25, "expected a positive whole number after 'within', found '0'"),
    ("last_purchase_at within -1 days", 25, "expected a positive whole number after 'within', found '-1'"),
    ("last_purchase_at within days", 25, "expected a positive whole number after 'within', found 'days'"),
    ("last_purchase_at within 3 weeks", 27, "expected 'days' or 'hours', found 'weeks'"),
    ('last_purchase_at within 3 "days"', 27, "expected 'days' or 'hours', found '\"days\"'"),
    ("last_purchase_at within 3", 26, "expected 'days' or 'hours', found end of input"),
    ("last_purchase_at within 36501 days", 25, "'within' window is at most 36500 days, found '36501'"),
    ("last_purchase_at within 876001 hours", 25, "'within' window is at most 876000 hours, found '876001'"),
]


@pytest.mark.parametrize(("text", "column", "message"), SYNTAX, ids=[s[0] for s in SYNTAX])
def test_syntax_errors_give_the_column(text: str, column: int, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("vip", text, FIELDS)
    assert str(caught.value) == f"rule 'vip': syntax error at column {column}: {message}"
    assert caught.value.column == column


def test_window_limits_are_inclusive() -> None:
    assert parse("last_purchase_at within 36500 days").expr == Within("last_purchase_at", 36500, "days")
    assert parse("last_purchase_at within 876000 hours").expr == Within("last_purchase_at", 876000, "hours")


def test_input_bounds_accept_the_limit_and_reject_beyond() -> None:
    text = "orders >= 1 or " * 132 + "orders >= 1" + " " * 9
    assert len(text) == 2000
    assert len(parse(text).expr.operands) == 133  # type: ignore[union-attr]

    assert parse("(" * 32 + "orders >= 1" + ")" * 32).expr == Compare("orders", ">=", 1)
    assert parse("not " * 32 + "orders >= 1").fields == {"orders"}
    assert parse("not (" * 16 + "orders >= 1" + ")" * 16).fields == {"orders"}
    deep = [
        ("(" * 33 + "orders >= 1" + ")" * 33, 33, "'('"),
        ("not " * 33 + "orders >= 1", 129, "'not'"),
        ("not (" * 16 + "not orders >= 1" + ")" * 16, 81, "'not'"),
        ("(" * 980 + "orders >= 1" + ")" * 979, 33, "'('"),
    ]
    for text, column, found in deep:
        with pytest.raises(RuleError) as caught:
            parse(text)
        assert str(caught.value) == (
            f"rule 'r': syntax error at column {column}: nesting deeper than 32 levels, found {found}"
        )

    items = ", ".join(str(n) for n in range(64))
    assert parse(f"orders in ({items})").expr == Membership("orders", tuple(range(64)))
    with pytest.raises(RuleError) as caught:
        parse(f"orders in ({items}, 64)")
    column = len(f"orders in ({items}, ") + 1
    assert str(caught.value) == (
        f"rule 'r': syntax error at column {column}: 'in' list has more than 64 items, found '64'"
    )


# --- evaluation ----------------------------------------------------------------------------------------

EVALUATION: list[tuple[str, dict[str, Any], bool]] = [
    ("orders >= 3 and monetary > 100", {"orders": 3, "monetary": Decimal("100.01")}, True),
    ("orders >= 3 and monetary > 100", {"orders": 3, "monetary": 100}, False),
    ("orders >= 3 and monetary > 100", {"orders": 2, "monetary": 1000}, False),
    ("monetary >= 500.50", {"monetary": Decimal("500.5")}, True),
    ("monetary >= 500.50", {"monetary": Decimal("500.4999999999999999999999")}, False),
    ("monetary == 500.50", {"monetary": Decimal("500.500")}, True),
    ("monetary < 501", {"monetary": Decimal("500.99")}, True),
    ("orders <= 2", {"orders": 2}, True),
    ("orders < 2", {"orders": 2}, False),
    ("orders != 2", {"orders": 3}, True),
    ("orders == 2.0", {"orders": 2}, True),
    ('region in ("north", "west")', {"region": "west"}, True),
    ('region in ("north", "west")', {"region": "West"}, False),
    ('region not in ("north", "west")', {"region": "south"}, True),
    ('region not in ("north", "west")', {"region": "north"}, False),
    ("orders in (1, 2.5)", {"orders": Decimal("2.50")}, True),
    ("email_opted_in == true", {"email_opted_in": True}, True),
    ("email_opted_in == true", {"email_opted_in": False}, False),
    ("email_opted_in != true", {"email_opted_in": False}, True),
    (
        '(lifecycle == "at_risk" or lifecycle == "lost") and monetary >= 500.50',
        {"lifecycle": "lost", "monetary": 600},
        True,
    ),
    ('lifecycle == "a" or lifecycle == "b" or lifecycle == "c"', {"lifecycle": "c"}, True),
    ('lifecycle == "a" or lifecycle == "b" or lifecycle == "c"', {"lifecycle": "d"}, False),
    ("orders > 1 and orders > 2 and orders > 3", {"orders": 4}, True),
    ("orders > 1 and orders > 2 and orders > 3", {"orders": 3}, False),
    ("orders > 1 and orders > 2 and orders > 3 and orders > 4", {"orders": 5}, True),
    ("orders > 1 and orders > 2 and orders > 3 and orders > 4", {"orders": 4}, False),
    ("orders == 1 or orders == 2 or orders == 3 or orders == 4", {"orders": 4}, True),
    ("orders == 1 or orders == 2 or orders == 3 or orders == 4", {"orders": 5}, False),
    # Null (missing or None): every comparison is false except == null / != null.
    ("birth_year != null", {"birth_year": 1980}, True),
    ("birth_year != null", {"birth_year": None}, False),
    ("birth_year == null", {}, True),
    ("birth_year == null", {"birth_year": 0}, False),
    ("last_purchase_at == null", {}, True),
    ("orders >= 0", {}, False),
    ("orders < 0", {"orders": None}, False),
    ("orders != 3", {}, False),
    ('region == "north"', {}, False),
    ('region != "north"', {}, False),
    ('region in ("north")', {}, False),
    ('region not in ("north")', {}, False),
    ("email_opted_in == false", {}, False),
    ("email_opted_in != true", {"email_opted_in": None}, False),
    ("last_purchase_at within 30 days", {}, False),
    ('not email == "unsubscribed"', {}, True),
    ('region in ("north", "west") and not email == "unsubscribed"', {"region": "north"}, True),
    (
        'region in ("north", "west") and not email == "unsubscribed"',
        {"region": "north", "email": "unsubscribed"},
        False,
    ),
]


@pytest.mark.parametrize(
    ("text", "values", "expected"), EVALUATION, ids=[f"{e[0]}|{e[1]}" for e in EVALUATION]
)
def test_evaluation(text: str, values: dict[str, Any], expected: bool) -> None:
    assert parse(text).evaluate(values, NOW) is expected


def test_within_boundary_is_exact_and_next_change_is_field_plus_window() -> None:
    rule = parse("last_purchase_at within 30 days")
    last = NOW - timedelta(days=10)
    assert rule.evaluate({"last_purchase_at": last}, NOW) is True
    assert rule.next_change({"last_purchase_at": last}, NOW) == last + timedelta(days=30)
    assert rule.evaluate({"last_purchase_at": NOW - timedelta(days=30)}, NOW) is False
    assert rule.evaluate({"last_purchase_at": NOW - timedelta(days=30) + US}, NOW) is True
    deadline = last + timedelta(days=30)
    assert rule.evaluate({"last_purchase_at": last}, deadline) is False
    assert rule.evaluate({"last_purchase_at": last}, deadline - US) is True
    assert rule.next_change({"last_purchase_at": last}, deadline - US) == deadline
    assert rule.next_change({"last_purchase_at": last}, deadline) is None
    future = NOW + timedelta(days=1)  # a stamp after `now` is "within" until stamp + window
    assert rule.evaluate({"last_purchase_at": future}, NOW) is True

    hours = parse("last_purchase_at within 12 hours")
    stamp = NOW - timedelta(hours=11, minutes=59)
    assert hours.evaluate({"last_purchase_at": stamp}, NOW) is True
    assert hours.next_change({"last_purchase_at": stamp}, NOW) == stamp + timedelta(hours=12)


def test_next_change_is_the_first_instant_the_result_actually_changes() -> None:
    a, b = NOW - timedelta(days=1), NOW - timedelta(hours=1)
    values = {"last_purchase_at": a, "first_purchase_at": b, "orders": 5}
    assert parse("orders > 1").next_change(values, NOW) is None
    assert parse("last_purchase_at within 1 day").next_change(values, NOW) is None  # already over
    assert parse("last_purchase_at within 1 day").next_change(values, a + timedelta(days=1) - US) == (
        a + timedelta(days=1)
    )
    assert parse("last_purchase_at within 2 days").next_change({}, NOW) is None
    assert parse("not last_purchase_at within 2 days").next_change(values, NOW) == a + timedelta(days=2)
    assert parse("orders > 9 and last_purchase_at within 2 days").next_change(values, NOW) is None
    assert parse("orders > 1 and last_purchase_at within 2 days").next_change(values, NOW) == (
        a + timedelta(days=2)
    )
    either = parse("last_purchase_at within 2 days or first_purchase_at within 3 days")
    assert either.next_change(values, NOW) == b + timedelta(days=3)  # a's deadline changes nothing
    both = parse("last_purchase_at within 2 days and first_purchase_at within 3 days")
    assert both.next_change(values, NOW) == a + timedelta(days=2)
    band = parse("last_purchase_at within 2 days and not last_purchase_at within 1 hours")
    assert band.next_change(values, NOW) == a + timedelta(days=2)
    assert band.next_change(values, a) == a + timedelta(hours=1)
    near_max = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
    assert parse("last_purchase_at within 30 days").next_change({"last_purchase_at": near_max}, NOW) is None


def test_wrongly_typed_values_raise_rule_error_naming_the_rule() -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("orders >= 3", {"orders": "5"}, "'>=' not supported between instances of 'str' and 'int'"),
        ("monetary > 1", {"monetary": Decimal("NaN")}, "[<class 'decimal.InvalidOperation'>]"),
        ('region in ("a")', {"region": ["a"]}, "unhashable type: 'list'"),
        (
            "last_purchase_at within 1 day",
            {"last_purchase_at": datetime(2026, 1, 1)},
            "can't subtract offset-naive and offset-aware datetimes",
        ),
    ]
    for text, values, detail in cases:
        with pytest.raises(RuleError) as caught:
            parse_rule("vip", text, FIELDS).evaluate(values, NOW)
        assert str(caught.value) == f"rule 'vip': cannot evaluate: {detail}"
    with pytest.raises(RuleError) as caught:
        parse_rule("vip", "last_purchase_at within 1 day", FIELDS).next_change({"last_purchase_at": "x"}, NOW)
    assert (
        str(caught.value)
        == "rule 'vip': cannot evaluate: can only concatenate str (not \"datetime.timedelta\") to str"
    )


# --- hostile input -------------------------------------------------------------------------------------

INJECTIONS = [
    ("__import__('os').system('x')", "syntax error at column 17: unexpected character '.'"),
    ("orders.__class__", "syntax error at column 7: unexpected character '.'"),
    ("orders >= 1; import os", "syntax error at column 12: unexpected character ';'"),
    ("{{7*7}}", "syntax error at column 1: unexpected character '{'"),
    ("${jndi:ldap://x}", "syntax error at column 1: unexpected character '$'"),
    ("orders >= (1).__class__", "syntax error at column 14: unexpected character '.'"),
    ('"a" + "b"', "syntax error at column 5: unexpected character '+'"),
    ("lambda: 1", "syntax error at column 7: unexpected character ':'"),
    ("orders >= 1 or __builtins__", "syntax error at column 28: expected an operator, '(', 'in', 'not in'"),
    ("orders >= 1 or __builtins__ == 1", "unknown field '__builtins__' (allowed: "),
    ("orders in [1, 2]", "syntax error at column 11: unexpected character '['"),
    ("orders >= 1 -- comment", "syntax error at column 13: unexpected character '-'"),
    ("orders >= 1 # comment", "syntax error at column 13: unexpected character '#'"),
    ("orders >= 1\x00", "syntax error at column 12: unexpected character '\\x00'"),
    ("orders >= \u0661", "syntax error at column 11: unexpected character '\u0661'"),
    ("orders >= 1 and r\u0435gion == 'x'", "syntax error at column 18: unexpected character '\u0435'"),
    ("getattr(orders, '__class__')", "syntax error at column 9: expected 'last' after getattr("),
    ('exec("x")', "syntax error at column 6: expected 'last' after exec("),
    ("orders >= 1 or 1", "syntax error at column 16: expected a field name, found '1'"),
    ("orders == orders", "syntax error at column 11: expected a literal"),
    ('region == "\\x41"', "syntax error at column 12: invalid escape '\\\\x'"),
    ("orders >= 1" + " or orders >= 1" * 300, "rule text is 4511 characters long (limit 2000)"),
    ("(" * 5000 + "orders >= 1" + ")" * 5000, "rule text is 10011 characters long (limit 2000)"),
    ("not " * 400 + "orders >= 1", "syntax error at column 129: nesting deeper than 32 levels"),
    ("(" * 990 + "orders >= 1" + ")" * 990, "syntax error at column 33: nesting deeper than 32 levels"),
]


@pytest.mark.parametrize(("text", "message"), INJECTIONS, ids=[i[0][:30] for i in INJECTIONS])
def test_injection_payloads_are_rejected(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("vip", text, FIELDS)
    assert str(caught.value).startswith(f"rule 'vip': {message}")


class SpyMapping(Mapping[str, Any]):
    """Records every key looked up: the evaluator's only access to customer data."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.seen: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.seen.append(key)
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the evaluator must not enumerate values")

    def __len__(self) -> int:
        raise AssertionError("the evaluator must not size values")


def test_no_python_object_attribute_can_be_reached() -> None:
    # A field that looks like a dunder is only ever a mapping key, even when it is allow-listed.
    dunder = parse_rule(
        "d", "__class__ != null and __globals__ == null", {"__class__": T.NUMBER, "__globals__": T.NUMBER}
    )
    values = SpyMapping({"orders": 5})
    assert dunder.evaluate(values, NOW) is False
    assert values.seen == ["__class__"]
    values = SpyMapping({"__class__": 1})
    assert dunder.evaluate(values, NOW) is True
    assert values.seen == ["__class__", "__globals__"]

    rule = parse('orders >= 1 and region in ("a") and last_purchase_at within 1 day')
    values = SpyMapping({"orders": 1, "region": "a", "last_purchase_at": NOW})
    assert rule.evaluate(values, NOW) is True
    assert rule.next_change(values, NOW) == NOW + timedelta(days=1)
    assert set(values.seen) == rule.fields

    # The modules never call an evaluator or reflection builtin, touch a dunder attribute, or import
    # anything beyond the standard library's data types.
    forbidden = {"eval", "exec", "compile", "getattr", "setattr", "__import__", "globals", "locals", "vars"}
    allowed_imports = {
        "__future__",
        "collections.abc",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "typing",
    }
    allowed_imports.update(
        {
            "segmentation.rules_syntax",
            "segmentation.rule_windows",
            "segmentation.rule_text",
            "segmentation.rule_fields",
            "operator",
            "bisect",
            "functools",
        }
    )
    for module in (rules, rules_syntax, rule_windows, rule_text, rule_fields):
        # the source file, not `__file__`: compiled by mypyc, that is the extension module
        source = Path(__file__).parents[2] / (module.__name__.replace(".", "/") + ".py")
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Name) and node.id in forbidden), node.id
            if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
                # only our own initialisers: RuleError's base, Rule's derived fields in __post_init__
                assert ast.unparse(node) in {"super().__init__", "object.__setattr__"}
            if isinstance(node, ast.Import):
                assert {alias.name for alias in node.names} <= allowed_imports
            if isinstance(node, ast.ImportFrom):
                assert node.module in allowed_imports


# --- properties ----------------------------------------------------------------------------------------

NUMBERS = st.one_of(st.integers(-3, 3), st.sampled_from([Decimal(d) for d in ("-1.5", "0.0", "1.0", "2.25")]))
STRINGS = st.sampled_from(["", "a", "b", 'q"uote', "it's", "back\\slash", "é ()"])
NUMBER_FIELDS = st.sampled_from(["orders", "monetary"])
STRING_FIELDS = st.sampled_from(["region", "email"])
DATE_FIELDS = st.sampled_from(["last_purchase_at", "first_purchase_at"])
EQUALITY = st.sampled_from(["==", "!="])

WITHIN = st.builds(Within, DATE_FIELDS, st.integers(1, 72), st.sampled_from(["days", "hours"]))
LEAVES = st.one_of(
    st.builds(Compare, NUMBER_FIELDS, st.sampled_from(sorted(rules_syntax.COMPARISON_OPS)), NUMBERS),
    st.builds(Compare, st.sampled_from(sorted(FIELDS)), EQUALITY, st.none()),
    st.builds(Compare, STRING_FIELDS, EQUALITY, STRINGS | st.text(max_size=6)),
    st.builds(Compare, st.just("email_opted_in"), EQUALITY, st.booleans()),
    st.builds(Membership, NUMBER_FIELDS, st.lists(NUMBERS, min_size=1, max_size=4).map(tuple), st.booleans()),
    st.builds(Membership, STRING_FIELDS, st.lists(STRINGS, min_size=1, max_size=4).map(tuple), st.booleans()),
    WITHIN,
)


def trees(leaves: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        operands = st.lists(children, min_size=2, max_size=4).map(tuple)
        return st.one_of(st.builds(Not, children), st.builds(And, operands), st.builds(Or, operands))

    return st.recursive(leaves, extend, max_leaves=10)


STAMPS = st.none() | st.integers(-100 * 24 * 60, 10 * 24 * 60).map(lambda m: NOW + timedelta(minutes=m))
VALUES = st.fixed_dictionaries(
    {},
    optional={
        "orders": NUMBERS | st.none(),
        "monetary": NUMBERS,
        "region": STRINGS,
        "email": STRINGS | st.none(),
        "email_opted_in": st.booleans() | st.none(),
        "last_purchase_at": STAMPS,
        "first_purchase_at": STAMPS,
    },
)
OPS: dict[str, Callable[[Any, Any], Any]] = {"==": operator.eq, "!=": operator.ne, "<": operator.lt}
OPS.update({"<=": operator.le, ">": operator.gt, ">=": operator.ge})


def reference(node: Node, values: Mapping[str, Any], now: datetime) -> bool:
    """A deliberately naive interpreter of the documented semantics, to check the compiled closures."""
    if isinstance(node, Not):
        return not reference(node.operand, values, now)
    if isinstance(node, And):
        return all(reference(operand, values, now) for operand in node.operands)
    if isinstance(node, Or):
        return any(reference(operand, values, now) for operand in node.operands)
    value = values.get(node.field)
    if isinstance(node, Compare) and node.value is None:
        return (value is None) == (node.op == "==")
    if value is None:
        return False
    if isinstance(node, Within):
        return bool(now - value < timedelta(**{node.unit: node.amount}))
    if isinstance(node, Membership):
        return (value in node.values) != node.negated
    return bool(OPS[node.op](value, node.value))


def depth(node: Node) -> int:
    if isinstance(node, Not):
        return 1 + depth(node.operand)
    if isinstance(node, And | Or):
        return max(depth(o) + isinstance(o, And | Or) for o in node.operands)
    return 0


@given(trees(LEAVES))
def test_printed_ast_parses_back_to_itself(tree: Node) -> None:
    assume(depth(tree) <= 32)
    text = to_text(tree)
    rule = parse(text)
    assert rule.expr == tree
    assert rule.canonical_text == text


@given(trees(LEAVES), VALUES)
def test_compiled_evaluation_matches_the_reference_semantics(tree: Node, values: dict[str, Any]) -> None:
    assert Rule("p", to_text(tree), tree).evaluate(values, NOW) is reference(tree, values, NOW)


@given(trees(WITHIN), VALUES)
def test_next_change_is_exact(tree: Node, values: dict[str, Any]) -> None:
    rule = Rule("p", to_text(tree), tree)
    current = rule.evaluate(values, NOW)
    change = rule.next_change(values, NOW)
    if change is None:
        assert rule.evaluate(values, NOW + timedelta(days=1000)) is current
    else:
        assert change > NOW
        assert rule.evaluate(values, change) is not current
        assert rule.evaluate(values, change - US) is current
    assert rule.next_change(values, NOW, current) == change  # the caller's own result saves one evaluation


TOKEN_SOUP = "orders region last_purchase_at Orders and OR not in within days hour true null __class__ "
TOKEN_SOUP += """( ) , == != < >= = ! 3 -1 2.5 1. "a" 'b' "\\ . \\"""


@given(st.lists(st.sampled_from(TOKEN_SOUP.split(" ")), max_size=12).map(" ".join) | st.text(max_size=80))
def test_arbitrary_text_either_parses_or_raises_rule_error(text: str) -> None:
    try:
        rule = parse(text)
    except RuleError as exc:
        assert str(exc).startswith("rule 'r': ")
    else:
        assert parse(rule.canonical_text).expr == rule.expr
