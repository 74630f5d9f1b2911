"""Tokenizer, recursive-descent parser and AST of the targeting-rule language.

Hand-written on purpose: no eval/exec/compile and no expression engine, so a rule can only name fields
and literals, never reach a Python object (Apache Unomi's CVE-2020-11975 and CVE-2020-13942 came from
evaluating user expressions with a general-purpose engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import NoReturn, TypeAlias

MAX_TEXT_LENGTH = 2000
MAX_DEPTH = 32
MAX_IN_ITEMS = 64
MAX_WINDOW = {"days": 36_500, "hours": 876_000}  # 100 years: keeps field + window far from datetime.max

KEYWORDS = frozenset({"and", "or", "not", "in", "within", "true", "false", "null"})
COMPARISON_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_UNITS = {"day": "days", "days": "days", "hour": "hours", "hours": "hours"}
_DIGITS = frozenset("0123456789")
_LOWER = frozenset("abcdefghijklmnopqrstuvwxyz_")
_WORD_START = _LOWER | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WORD_CHARS = _WORD_START | _DIGITS
_FIELD_CHARS = _LOWER | _DIGITS
_SPACE = frozenset(" \t\r\n")
_ESCAPES = frozenset("\"'\\")

Value: TypeAlias = str | int | Decimal | bool | None


class RuleError(ValueError):
    """A rule that cannot be parsed, validated or evaluated; the message always names the rule."""

    def __init__(self, rule: str, message: str, column: int | None = None) -> None:
        where = "" if column is None else f"syntax error at column {column}: "
        super().__init__(f"rule {rule!r}: {where}{message}")
        self.rule = rule
        self.column = column


@dataclass(frozen=True, slots=True)
class Compare:
    field: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Membership:
    field: str
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Within:
    field: str
    amount: int
    unit: str  # normalised: "days" or "hours"


@dataclass(frozen=True, slots=True)
class Windowed:  # `aggregate(last N days|hours[, filter == literal]...) op literal`
    field: str  # the aggregate: orders, spend, coupon_orders
    amount: int
    unit: str  # normalised: "days" or "hours"
    filters: tuple[tuple[str, Value], ...]  # (name, literal), sorted by name, each name once
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node: TypeAlias = Compare | Membership | Within | Windowed | Not | And | Or


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "word", "num", "str", "op", "(", ")", ",", "end"
    text: str  # source text, quoted in error messages
    value: Value  # lower-cased word, parsed number or unescaped string
    column: int  # 1-based


def tokenize(rule: str, text: str) -> list[_Token]:
    """Split `text` into tokens; any character outside the language is an error with its column."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c, start = text[i], i
        if c in _SPACE:
            i += 1
            continue
        if c in "(),":
            i += 1
            tokens.append(_Token(c, c, None, start + 1))
        elif c in "=!<>":
            op = text[i : i + 2] if text[i : i + 2] in COMPARISON_OPS else c
            if op not in COMPARISON_OPS:
                raise RuleError(rule, f"unexpected {c!r} (operators are == != < <= > >=)", start + 1)
            i += len(op)
            tokens.append(_Token("op", op, op, start + 1))
        elif c in _WORD_START:
            i += 1
            while i < n and text[i] in _WORD_CHARS:
                i += 1
            tokens.append(_Token("word", text[start:i], text[start:i].lower(), start + 1))
        elif c in _DIGITS or (c == "-" and text[i + 1 : i + 2] in _DIGITS):
            i, number = _number(rule, text, i)
            tokens.append(_Token("num", text[start:i], number, start + 1))
        elif c in "\"'":
            i, string = _string(rule, text, i)
            tokens.append(_Token("str", text[start:i], string, start + 1))
        else:
            raise RuleError(rule, f"unexpected character {c!r}", start + 1)
    tokens.append(_Token("end", "", None, n + 1))
    return tokens


def _number(rule: str, text: str, i: int) -> tuple[int, int | Decimal]:
    """Integers stay int, decimals become Decimal: money must never pass through float."""
    start = i
    i += 1
    while i < len(text) and text[i] in _DIGITS:
        i += 1
    if text[i : i + 1] != ".":
        return i, int(text[start:i])
    i += 1
    fraction = i
    while i < len(text) and text[i] in _DIGITS:
        i += 1
    if i == fraction:
        raise RuleError(rule, "expected digits after the decimal point", i + 1)
    return i, Decimal(text[start:i])


def _string(rule: str, text: str, i: int) -> tuple[int, str]:
    quote, start = text[i], i
    out: list[str] = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == quote:
            return i + 1, "".join(out)
        if c == "\\":
            if text[i + 1 : i + 2] not in _ESCAPES:
                raise RuleError(rule, f"invalid escape {text[i : i + 2]!r} (only \\\" \\' \\\\)", i + 1)
            c = text[i + 1]
            i += 1
        out.append(c)
        i += 1
    raise RuleError(rule, "unterminated string", start + 1)


def parse_expression(rule: str, text: str) -> Node:
    """Parse rule text into an AST after bounding its size, so hostile input cannot exhaust anything."""
    if len(text) > MAX_TEXT_LENGTH:
        raise RuleError(rule, f"rule text is {len(text)} characters long (limit {MAX_TEXT_LENGTH})")
    if not text.strip():
        raise RuleError(rule, "rule text is empty")
    return _Parser(rule, tokenize(rule, text)).parse()


class _Parser:
    def __init__(self, rule: str, tokens: list[_Token]) -> None:
        self.rule = rule
        self.tokens = tokens
        self.pos = 0

    def fail(self, message: str, token: _Token | None = None) -> NoReturn:
        token = token or self.tokens[self.pos]
        found = "end of input" if token.kind == "end" else repr(token.text)
        raise RuleError(self.rule, f"{message}, found {found}", token.column)

    def peek_keyword(self, keyword: str) -> bool:
        token = self.tokens[self.pos]
        return token.kind == "word" and token.value == keyword

    def advance(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, kind: str, what: str) -> _Token:
        if self.tokens[self.pos].kind != kind:
            self.fail(f"expected {what}")
        return self.advance()

    def parse(self) -> Node:
        node = self.or_expr(0)
        self.expect("end", "'and', 'or' or end of input")
        return node

    def nest(self, depth: int) -> int:
        if depth >= MAX_DEPTH:
            self.fail(f"nesting deeper than {MAX_DEPTH} levels")
        return depth + 1

    def or_expr(self, depth: int) -> Node:
        items = [self.and_expr(depth)]
        while self.peek_keyword("or"):
            self.advance()
            items.append(self.and_expr(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self, depth: int) -> Node:
        items = [self.not_expr(depth)]
        while self.peek_keyword("and"):
            self.advance()
            items.append(self.not_expr(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self, depth: int) -> Node:
        if self.peek_keyword("not"):
            depth = self.nest(depth)
            self.advance()
            return Not(self.not_expr(depth))
        if self.tokens[self.pos].kind == "(":
            depth = self.nest(depth)
            self.advance()
            node = self.or_expr(depth)
            self.expect(")", "')'")
            return node
        return self.comparison()

    def comparison(self) -> Node:
        token = self.tokens[self.pos]
        name = token.text
        if token.kind != "word" or token.value in KEYWORDS:
            self.fail("expected a field name")
        if not set(name) <= _FIELD_CHARS:
            self.fail("field names are lower-case letters, digits and '_'")
        self.advance()
        if self.tokens[self.pos].kind == "(":  # an aggregate of the recent orders
            return self.windowed(name)
        if self.tokens[self.pos].kind == "op":
            op = str(self.advance().value)
            return Compare(name, op, self.literal())
        negated = self.peek_keyword("not")
        if negated:
            self.advance()
            if not self.peek_keyword("in"):
                self.fail("expected 'in' after 'not'")
        if self.peek_keyword("in"):
            self.advance()
            return Membership(name, self.literal_list(), negated)
        if self.peek_keyword("within"):
            self.advance()
            return Within(name, *self.window("within"))
        self.fail(f"expected an operator, '(', 'in', 'not in' or 'within' after field {name!r}")

    def literal(self) -> Value:
        token = self.tokens[self.pos]
        if token.kind in ("num", "str"):
            return self.advance().value
        if token.kind == "word" and token.value in ("true", "false", "null"):
            self.advance()
            return {"true": True, "false": False, "null": None}[str(token.value)]
        self.fail("expected a literal (string, number, true, false or null)")

    def literal_list(self) -> tuple[Value, ...]:
        self.expect("(", "'(' to open the 'in' list")
        items = [self.literal()]
        while self.tokens[self.pos].kind == ",":
            self.advance()
            if len(items) == MAX_IN_ITEMS:
                self.fail(f"'in' list has more than {MAX_IN_ITEMS} items")
            items.append(self.literal())
        self.expect(")", "',' or ')'")
        return tuple(items)

    def windowed(self, name: str) -> Windowed:  # `(last N unit, name == literal, ...) op literal`
        self.advance()
        if not self.peek_keyword("last"):
            self.fail(f"expected 'last' after {name}(")
        self.advance()
        amount, unit = self.window("last")
        filters: dict[str, Value] = {}
        while self.tokens[self.pos].kind == ",":
            self.advance()
            token = self.advance()
            if token.kind != "word" or token.value in KEYWORDS or not set(token.text) <= _FIELD_CHARS:
                self.fail("expected a filter name", token)
            if token.text in filters or self.tokens[self.pos].value != "==":
                self.fail(f"expected '==' after filter {token.text!r} (each filter once)")
            self.advance()
            filters[token.text] = self.literal()
        self.expect(")", "',' or ')'")
        op = str(self.expect("op", f"an operator after {name}(...)").value)
        return Windowed(name, amount, unit, tuple(sorted(filters.items())), op, self.literal())

    def window(self, keyword: str) -> tuple[int, str]:
        number = self.tokens[self.pos]
        amount = number.value
        if type(amount) is not int or amount < 1:
            self.fail(f"expected a positive whole number after '{keyword}'")
        self.advance()
        token = self.tokens[self.pos]
        unit = _UNITS.get(str(token.value)) if token.kind == "word" else None
        if unit is None:
            self.fail("expected 'days' or 'hours'")
        self.advance()
        if amount > MAX_WINDOW[unit]:
            self.fail(f"'{keyword}' window is at most {MAX_WINDOW[unit]} {unit}", number)
        return amount, unit
