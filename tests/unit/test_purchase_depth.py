"""Purchase depth: category and promotion grids, the recent-orders record and windowed rules (issue #15)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from segmentation import DefinitionsError, OrderAlreadyCounted, advance, apply, next_due, resegment
from segmentation.audiences import FIELDS, window_filters
from segmentation.category import CategoryConfig, split_order
from segmentation.event_types import Item
from segmentation.rules import RuleError, parse_rule, to_text
from segmentation.state import CategoryTotal
from segmentation.state_fields import state_fields
from segmentation.state_mapping import state_from_mapping, state_to_mapping
from streams.worker.batch import Record, apply_batch
from tests.unit.seg_helpers import (
    DEFAULT,
    day,
    definitions_with,
    ev,
    format_5,
    of_grid,
    packed_before,
    refund,
    run,
)

WEB_FULL_PRICE = 'orders(last 30 days, channel == "web") >= 1 and coupon_orders(last 30 days) == 0'
WINDOWED = definitions_with(audiences={"web_full_price": WEB_FULL_PRICE}, recent_orders=3)


def buy(at: Any, order: str, amount: str = "10.00", channel: str = "web", **kw: Any) -> Any:
    return ev("purchase", at, event_id=f"e-{order}", order_id=order, amount=amount, currency="EUR",
              channel=channel, **kw)  # fmt: skip


def item(sku: str, quantity: int = 1, price: str | None = None, category: str | None = None) -> Item:
    return Item(
        sku=sku, quantity=quantity, unit_price=None if price is None else Decimal(price), category=category
    )


# --- category grid -------------------------------------------------------------------------------------


def test_category_follows_spend_and_turns_mixed_when_no_category_dominates() -> None:
    state, transitions = run(
        [
            buy(day(0), "o1", "80.00", items=[{"sku": "SH-1", "quantity": 1}]),  # shoes by sku prefix
            buy(day(1), "o2", "90.00", items=[{"sku": "x-9", "quantity": 1, "category": "Home"}]),  # declared
            buy(day(2), "o3", "100.00", items=[{"sku": "zz", "quantity": 1}]),  # unmapped: other
        ]
    )
    assert of_grid(transitions, "category") == [
        (None, "shoes", day(0), "e-o1"),
        ("shoes", "home", day(1), "e-o2"),  # 90 of 170: 0.53 >= 0.5
        ("home", "mixed", day(2), "e-o3"),  # top is other with 100 of 270: 0.37
    ]
    assert state.categories == (
        CategoryTotal("home", 1, 9000),
        CategoryTotal("other", 1, 10000),
        CategoryTotal("shoes", 1, 8000),
    )
    mixed = [t for t in transitions if t.grid == "category"][-1].why
    assert mixed["rule"] == "no category has 0.5 of spend"
    assert (mixed["spend_minor:other"], mixed["orders:other"], mixed["spend_minor_total"]) == (
        "10000",
        "1",
        "27000",
    )


def test_orders_without_items_leave_the_category_grid_at_none() -> None:
    state, transitions = run([buy(day(0), "o1")])
    assert of_grid(transitions, "category") == [(None, "none", day(0), "e-o1")]
    assert state.categories == ()
    assert transitions[[t.grid for t in transitions].index("category")].why == {
        "rule": "no order with items yet"
    }


def test_an_order_is_split_over_its_categories_by_line_value_exactly() -> None:
    cfg = DEFAULT.category
    # 3 x 10 shoes, 1 x 20 apparel on a 99.99 order: 59.994 / 39.996 -> largest remainder gets the cent
    assert split_order([item("SH-1", 3, "10"), item("AP-1", 1, "20")], 9999, cfg) == (
        ("apparel", 4000),
        ("shoes", 5999),
    )
    # a line without a price: split by quantity; all prices zero: by quantity too
    assert split_order([item("SH-1", 1, "10"), item("AP-1", 3)], 1000, cfg) == (
        ("apparel", 750),
        ("shoes", 250),
    )
    assert split_order([item("SH-1", 1, "0"), item("AP-1", 1, "0")], 101, cfg) == (
        ("apparel", 51),
        ("shoes", 50),
    )
    assert split_order([item("SH-1"), item("SH-2", 2, category="SHOES")], 500, cfg) == (("shoes", 500),)
    assert split_order([item("zz", category="garden")], 7, cfg) == (("other", 7),)
    assert split_order([], 7, cfg) == ()


def test_ties_go_to_the_category_listed_first_and_zero_spend_ranks_by_orders() -> None:
    state, _ = run(
        [
            buy(day(0), "o1", "50.00", items=[{"sku": "AP-1", "quantity": 1}]),
            buy(day(1), "o2", "50.00", items=[{"sku": "SH-1", "quantity": 1}]),
        ]
    )
    assert state.seg_category == "shoes"  # 50/50: shoes is listed before apparel
    free, _ = run([buy(day(0), "o1", "0.00", items=[{"sku": "HM-1", "quantity": 1}])])
    assert free.seg_category == "home"
    # a category the definitions no longer list counts as other
    renamed = definitions_with(category={"categories": ["garden"]})
    assert apply(state, ev("web_visit", day(2)), renamed).state.seg_category == "other"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"categories": []}, "category.categories: list 1 to 7 categories"),
        ({"categories": ["a", "b", "c", "d", "e", "f", "g", "h"]}, "got 8"),
        ({"categories": ["Shoes"]}, "'Shoes' must be a lower-case identifier other than mixed, none, other"),
        ({"categories": ["other"]}, "'other' must be a lower-case identifier"),
        ({"categories": ["a", "a"]}, "category.categories: names must be unique"),
        ({"categories": ["a"], "sku_prefixes": {"X": "b"}}, "category.sku_prefixes.X: 'b' is not one of"),
        ({"categories": ["a"], "sku_prefixes": {"X": 3}}, "expected 'prefix: category' strings, got 'X': 3"),
        (
            {"categories": ["a"], "dominant_share": "0"},
            "category.dominant_share: must be > 0 and <= 1, got 0",
        ),
        ({"categories": ["a"], "dominant_share": 0.5}, "category.dominant_share: expected a decimal string"),
        ({"categories": ["a"], "sku_prefixes": {f"p{n}": "a" for n in range(1001)}}, "at most 1000 prefixes"),
        ({"colour": 1}, "category: unknown keys ['colour']"),
    ],
)
def test_category_definitions_errors_name_the_key(section: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message.replace("(", r"\(").replace("[", r"\[")):
        definitions_with(category=section)


def test_longest_sku_prefix_wins() -> None:
    cfg = CategoryConfig.from_mapping(
        {"categories": ["shoes", "home"], "sku_prefixes": {"S": "home", "SH": "shoes"}}
    )
    assert (cfg.category_of("SH-1", None), cfg.category_of("S-1", None), cfg.category_of("Q", None)) == (
        "shoes",
        "home",
        "other",
    )
    assert DEFAULT.grid_segments["category"] == ("shoes", "apparel", "accessories", "home", "beauty", "other",
                                                 "mixed", "none")  # fmt: skip


# --- promotion grid ------------------------------------------------------------------------------------


def test_promotion_follows_the_share_of_coupon_orders() -> None:
    state, transitions = run(
        [
            ev("web_visit", day(0), event_id="v"),
            buy(day(1), "o1"),
            buy(day(2), "o2", coupon_used=True),  # 1 of 2: promo_driven (>= 0.5)
            buy(day(3), "o3"),  # 1 of 3: occasional
            refund(day(4), "5.00"),  # a refund changes no share
        ]
    )
    assert of_grid(transitions, "promotion") == [
        (None, "no_purchase", day(0), "v"),
        ("no_purchase", "full_price", day(1), "e-o1"),
        ("full_price", "promo_driven", day(2), "e-o2"),
        ("promo_driven", "occasional", day(3), "e-o3"),
    ]
    assert (state.orders, state.coupon_orders) == (3, 1)
    last = [t for t in transitions if t.grid == "promotion"][-1].why
    assert last == {"rule": "0 < coupon orders / orders < 0.5", "coupon_orders": "1", "orders": "3"}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"promo_driven_share": "0.2", "full_price_max_share": "0.2"}, "got 0.2, 0.2"),
        ({"promo_driven_share": "1.5"}, "need 0 <= full_price_max_share < promo_driven_share <= 1"),
        ({"full_price_max_share": "-0.1"}, "got -0.1, 0.5"),
    ],
)
def test_promotion_definitions_errors(section: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        definitions_with(promotion=section)


def test_recent_orders_size_is_bounded_in_the_definitions_and_zero_turns_the_record_off() -> None:
    for size in (-1, 201):
        with pytest.raises(DefinitionsError, match=f"recent_orders: must be between 0 and 200, got {size}"):
            definitions_with(recent_orders=size)
    with pytest.raises(
        DefinitionsError, match=r"recent_orders: 0 keeps no recent orders, but audiences \['w'\]"
    ):
        definitions_with(recent_orders=0, audiences={"w": "orders(last 1 day) >= 1"})
    off = definitions_with(recent_orders=0)
    state, _ = run([buy(day(0), "o1", coupon_used=True, items=[{"sku": "SH-1", "quantity": 1}])], off)
    assert (state.recent_orders, state.seg_category, state.seg_promotion) == ((), "shoes", "promo_driven")


def test_new_definitions_with_a_smaller_record_keep_the_newest_orders() -> None:
    state, _ = run([buy(day(n), f"o{n}") for n in range(3)], WINDOWED)
    assert [o.key for o in state.recent_orders] == ["o0", "o1", "o2"]
    smaller = resegment(state, definitions_with(recent_orders=2), day(3)).state
    assert [o.key for o in smaller.recent_orders] == ["o1", "o2"]
    assert resegment(state, definitions_with(recent_orders=0), day(3)).state.recent_orders == ()


# --- the recent-orders record --------------------------------------------------------------------------


def test_the_record_keeps_the_latest_orders_in_time_order_and_refunds_reduce_them() -> None:
    long_id = "order-" + "x" * 40
    state, _ = run(
        [
            buy(day(0), "o1", "10.00"),
            buy(
                day(5),
                long_id,
                "20.00",
                channel="store",
                coupon_used=True,
                items=[{"sku": "SH-1", "quantity": 1}],
            ),
            buy(day(3), "late", "30.00"),  # late: takes its place by time
            buy(day(6), "o4", "40.00"),  # the record holds 3 (WINDOWED): o1 is forgotten
            ev("refund", day(7), order_id=long_id, amount="25.00", currency="EUR"),  # never below zero
            ev("refund", day(7), order_id="o1", amount="1.00", currency="EUR"),  # forgotten: record unchanged
            buy(day(1), "too-old", "50.00"),  # older than every kept order of a full record: not kept
        ],
        WINDOWED,
    )
    stored = [(o.at, o.channel, o.coupon, o.amount_minor, o.categories) for o in state.recent_orders]
    assert stored == [
        (day(3), "web", False, 3000, ()),
        (day(5), "store", True, 0, ("shoes",)),
        (day(6), "web", False, 4000, ()),
    ]
    assert len(state.recent_orders[1].key) == 12  # a long order id is kept as a digest
    assert (state.orders, state.refunded_minor) == (5, 2600)  # lifetime totals still count everything


def test_new_fields_round_trip_and_old_hashes_read_as_defaults() -> None:
    state, _ = run([buy(day(0), 'o"1', coupon_used=True, items=[{"sku": "SH-1", "quantity": 2}])])
    mapping = state_fields(state)
    assert mapping["categories"] == '[["shoes",1,1000]]'
    assert mapping["recent_orders"] == '[["2026-01-01T00:00:00+00:00","o\\"1","web",1,1000,["shoes"]]]'
    assert (mapping["coupon_orders"], mapping["segment:category"], mapping["segment:promotion"]) == (
        "1",
        "shoes",
        "promo_driven",
    )
    assert state_from_mapping(state_to_mapping(state)) == state
    old = packed_before(state, "coupon_orders")
    assert state_from_mapping(old) == state._replace(
        coupon_orders=0,
        categories=(),
        recent_orders=(),
        seg_category=None,
        seg_promotion=None,
        purchase_days=0,
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("categories", {}, "Expected `array`, got `object` - at `\\$\\[60\\]`"),
        ("categories", [["a", 1]], "Expected `array` of length 3, got 2 - at `\\$\\[60\\]\\[0\\]`"),
        ("categories", [["a", 1, "2"]], "Expected `int`, got `str` - at `\\$\\[60\\]\\[0\\]\\[2\\]`"),
        (
            "recent_orders",
            [[0, "o", "web", 2, 1, []]],
            "Expected `datetime`, got `int` - at `\\$\\[61\\]\\[0\\]\\[0\\]`",
        ),
        ("recent_orders", [[None, "o", "web", True, 1, []]], "Expected `datetime`, got `None`"),
    ],
)
def test_malformed_new_fields_are_refused_naming_them(key: str, value: object, message: str) -> None:
    state, _ = run([buy(day(0), "o1")])
    values: list[object] = list(state)
    values[type(state)._fields.index(key)] = value
    values[type(state)._fields.index("recent_ids")] = b""  # format 5: the window beside, here none
    packed = format_5(msgspec.msgpack.encode(values))
    mapping = state_to_mapping(state) | {"state": packed.decode("utf-8", "surrogateescape")}
    with pytest.raises(ValueError, match="packed customer state is damaged: " + message):
        state_from_mapping(mapping)


# --- windowed rules ------------------------------------------------------------------------------------


def test_web_full_price_buyers_leave_at_the_exact_instant_their_last_web_order_leaves_the_window() -> None:
    state, transitions = run(
        [
            buy(day(0), "o1", channel="web"),
            buy(day(10), "o2", channel="web"),
            buy(day(12), "o3", channel="store"),
        ],
        WINDOWED,
    )
    assert of_grid(transitions, "audience:web_full_price") == [(None, "member", day(0), "e-o1")]
    assert state.due_audiences == day(40)  # o2 (the last web order) + 30 days
    moved = advance(state, day(60), WINDOWED)
    exits = [t for t in moved.transitions if t.grid == "audience:web_full_price"]
    assert [(t.from_segment, t.to_segment, t.effective_at, t.cause) for t in exits] == [
        ("member", "not_member", day(40), "time")
    ]
    assert dict(exits[0].why) == {
        "rule": WEB_FULL_PRICE,
        'orders(last 30 days, channel == "web")': "0",
        "coupon_orders(last 30 days)": "0",
    }


def test_a_coupon_order_excludes_until_it_leaves_the_window_and_a_late_order_counts_in_its_window() -> None:
    state, transitions = run(
        [
            buy(day(0), "o1", channel="web"),
            buy(day(5), "o2", channel="app", coupon_used=True),  # out: a coupon in the last 30 days
            buy(day(20), "o3", channel="web"),
        ],
        WINDOWED,
    )
    assert of_grid(transitions, "audience:web_full_price") == [
        (None, "member", day(0), "e-o1"),
        ("member", "not_member", day(5), "e-o2"),
    ]
    assert state.due_audiences == day(35)  # the coupon order leaves: member again, by time alone
    back = advance(state, day(35), WINDOWED)
    assert of_grid(back.transitions, "audience:web_full_price") == [("not_member", "member", day(35), "time")]
    assert back.state.due_audiences == day(50)  # then o3 leaves
    # a late web order (day 30) arriving at day 36 keeps the customer in until day 60
    late = apply(back.state, buy(day(30), "o4", channel="web"), WINDOWED)
    assert late.state.due_audiences == day(60)


def test_spend_and_category_filters_and_hours_windows() -> None:
    d = definitions_with(
        audiences={
            "shoe_fans": 'orders(last 365 days, category == "shoes") >= 2',
            "big_week": "spend(last 168 hours) > 50.00",
            "app_promo": 'coupon_orders(last 1 day, channel == "app", coupon == true) >= 1',
        }
    )
    shoes = [{"sku": "SH-1", "quantity": 1}]
    state, transitions = run(
        [
            buy(day(0), "o1", "60.00", items=shoes),
            buy(day(100), "o2", "60.00", items=shoes, channel="app", coupon_used=True),
            ev("refund", day(101), event_id="r", order_id="o2", amount="30.00", currency="EUR"),
        ],
        d,
    )
    assert of_grid(transitions, "audience:shoe_fans") == [
        (None, "not_member", day(0), "e-o1"),
        ("not_member", "member", day(100), "e-o2"),
    ]
    assert of_grid(transitions, "audience:big_week") == [
        (None, "member", day(0), "e-o1"),  # 60.00 within 168 hours
        ("member", "not_member", day(7), "time"),  # exactly 168 hours later
        ("not_member", "member", day(100), "e-o2"),
        ("member", "not_member", day(101), "r"),  # the refund naming o2 leaves 30.00
    ]
    assert of_grid(transitions, "audience:app_promo") == [
        (None, "not_member", day(0), "e-o1"),
        ("not_member", "member", day(100), "e-o2"),
        ("member", "not_member", day(101), "time"),  # due at the refund's instant: applied before it
    ]
    # shoe_fans ends when o1 leaves its 365 days
    assert state.due_audiences == day(365)
    assert of_grid(advance(state, day(400), d).transitions, "audience:shoe_fans") == [
        ("member", "not_member", day(365), "time")
    ]


def test_windowed_rules_render_canonically_and_round_trip() -> None:
    filters = window_filters(("shoes", "other"))
    text = "spend(last 1 hour, coupon == false, category == 'shoes') <= 5.5 or not orders(last 2 days) == 0"
    rule = parse_rule("r", text, FIELDS, filters)
    canonical = (
        'spend(last 1 hour, category == "shoes", coupon == false) <= 5.5 or not orders(last 2 days) == 0'
    )
    assert to_text(rule.expr) == rule.canonical_text == canonical
    assert parse_rule("r", canonical, FIELDS, filters).expr == rule.expr
    assert rule.fields == frozenset({"recent_orders"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("orders(30 days) >= 1", "syntax error at column 8: expected 'last' after orders(, found '30'"),
        ("orders(last 30 days, 3 == 1) >= 1", "syntax error at column 22: expected a filter name, found '3'"),
        ('orders(last 1 day, channel = "web") >= 1', "unexpected '='"),
        (
            'orders(last 1 day, channel == "web", channel == "app") >= 1',
            "expected '==' after filter 'channel'",
        ),
        ("orders(last 1 day) in (1)", "column 20: expected an operator after orders(...)"),
        ("orders(last 1 week) >= 1", "expected 'days' or 'hours'"),
        ("refunds(last 1 day) >= 1", "unknown aggregate 'refunds' (allowed: orders, spend, coupon_orders)"),
        ('orders(last 1 day) >= "1"', 'orders(...) is a number, compared with "1"'),
        ("orders(last 1 day) == null", "orders(...) is a number, compared with null"),
        (
            "orders(last 1 day, store == true) >= 1",
            "unknown filter 'store' (allowed: category, channel, coupon)",
        ),
        ('orders(last 1 day, channel == "fax") >= 1', 'filter \'channel\' cannot be "fax" (allowed: "app"'),
        ('orders(last 1 day, category == "garden") >= 1', "filter 'category' cannot be \"garden\""),
        ("orders(last 1 day, coupon == 1) >= 1", "filter 'coupon' cannot be 1 (allowed: false, true)"),
    ],
)
def test_windowed_rule_errors_are_clear(text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("r", text, FIELDS, window_filters(("shoes", "other")))
    assert message in str(caught.value)


def test_windowed_aggregates_need_the_window_filters_and_definitions_name_the_audience() -> None:
    with pytest.raises(
        RuleError, match=r"windowed aggregates such as orders\(\.\.\.\) are not available here"
    ):
        parse_rule("r", "orders(last 1 day) >= 1", FIELDS)
    with pytest.raises(
        DefinitionsError, match=r"audiences\.r: rule 'r': filter 'category' cannot be \"garden\""
    ):
        definitions_with(audiences={"r": 'orders(last 1 day, category == "garden") >= 1'})


def test_the_record_is_empty_for_a_customer_without_orders() -> None:
    state, transitions = run([ev("web_visit", day(0), event_id="v")], WINDOWED)
    assert state.recent_orders == () and state.due_audiences is None
    assert of_grid(transitions, "audience:web_full_price") == [(None, "not_member", day(0), "v")]
    assert advance(state, day(400), WINDOWED).transitions == ()


def test_the_readme_rule_examples_load_with_the_default_definitions() -> None:
    """Every audience of the README's rule example block is a valid rule (so the documentation runs)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("```yaml\naudiences:\n", 1)[1].split("```", 1)[0]
    rules = dict(re.findall(r"^  (\w+): '(.*)'$", block, flags=re.MULTILINE))
    assert "web_full_price_30d" in rules and len(rules) == 7
    assert len(definitions_with(audiences=rules).audiences) == 7


def test_a_hash_stored_before_the_new_grids_gets_them_at_its_next_event_or_time_step() -> None:
    state, _ = run([buy(day(0), "o1", coupon_used=True)])
    old = state_from_mapping(
        packed_before(state, "coupon_orders")
    )  # same definitions version: only the new grids are missing
    outcome = apply(old, ev("web_visit", day(1), event_id="v"), DEFAULT)
    assert [(t.grid, t.from_segment, t.to_segment, t.cause) for t in outcome.transitions] == [
        ("category", None, "none", "definitions"),
        ("promotion", None, "full_price", "definitions"),  # its coupon order predates the counter
    ]
    assert [t.grid for t in advance(old, day(2), DEFAULT).transitions] == ["category", "promotion"]
    assert next_due(old, DEFAULT) == state.next_due_at


# --- an order sent again under a new event id ----------------------------------------------------------


def test_an_order_sent_again_under_a_new_event_id_is_refused_not_counted_twice() -> None:
    """A webhook resent, or a retry that mints a new UUID: the same order with another event id. Counted,
    it would double F and M; refused, the worker makes it a dead letter and the state stays as it was."""
    state, _ = run([buy(day(0), "o-981", "129.90")])
    again = ev("purchase", day(0), event_id="e-o-981-retry", order_id="o-981", amount="129.90",
               currency="EUR", channel="web")  # fmt: skip
    with pytest.raises(OrderAlreadyCounted, match=r"order 'o-981' was already counted"):
        apply(state, again, DEFAULT)
    long_id = "order-2026-000000981"  # kept as a digest in the record: recognised all the same
    state, _ = run([buy(day(0), long_id, "10.00")])
    with pytest.raises(OrderAlreadyCounted):
        apply(state, ev("purchase", day(1), order_id=long_id, amount="10.00", currency="EUR", channel="web"),
              DEFAULT)  # fmt: skip
    # a refund of it, then a new order: both applied
    back = ev("refund", day(2), order_id=long_id, amount="5.00", currency="EUR")
    state, _ = run([back, buy(day(3), "o-982")], state=state)
    assert (state.orders, state.gross_minor, state.refunded_minor) == (2, 2000, 500)


def test_the_batch_makes_the_resent_order_a_dead_letter_and_goes_on() -> None:
    events = [buy(day(0), "o-1"), ev("purchase", day(1), event_id="e-again", order_id="o-1", amount="10.00",
              currency="EUR", channel="web"), buy(day(2), "o-2")]  # fmt: skip
    records = [Record("events", 0, n, b"c1", None) for n in range(len(events))]
    result = apply_batch(records, (list(zip(records, events, strict=True)), []), {}, DEFAULT)
    assert [(d.offset, type(d.error).__name__) for d in result.dead_letters] == [(1, "OrderAlreadyCounted")]
    assert (result.states["c1"][0].orders, result.states["c1"][0].gross_minor) == (2, 2000)


def test_an_order_older_than_the_record_is_no_longer_recognised() -> None:
    """The record holds the last `recent_orders` orders (3 here): the bound of the check, documented."""
    state, _ = run([buy(day(n), f"o{n}") for n in range(4)], WINDOWED)
    assert apply(state, ev("purchase", day(5), order_id="o0", amount="1.00", currency="EUR", channel="web"),
                 WINDOWED).state.orders == 5  # fmt: skip
    with pytest.raises(OrderAlreadyCounted):
        apply(state, ev("purchase", day(5), order_id="o1", amount="1.00", currency="EUR", channel="web"),
              WINDOWED)  # fmt: skip
