"""The benchmarks' layout-free memory split and their before/after table (figures the lead compares)."""

from __future__ import annotations

import math

from benchmarks.before_after import side_by_side
from benchmarks.footprint import Footprint, kind_of

IDS = frozenset({"c000001", "c000002", "cust-9"})


def test_kind_of_finds_the_customer_in_any_part_of_the_name() -> None:
    prefix = "bench-1"
    assert kind_of("bench-1:main:{events:0}:c:c000001", prefix, IDS) == ("c:<id>", "c000001")
    assert kind_of("bench-1:main:{events:3}:h:c000002", prefix, IDS) == ("h:<id>", "c000002")
    assert kind_of("bench-1:main:{events:3}:x:y:cust-9:z", prefix, IDS) == ("x:<id>", "cust-9")
    assert kind_of("bench-1:main:{events:3}:cust-9", prefix, IDS) == ("<id>", "cust-9")
    # aggregates: per-partition structures, whatever they hold, and keys without a partition tag
    assert kind_of("bench-1:main:{events:0}:m:lifecycle:new", prefix, IDS) == ("m", None)
    assert kind_of("bench-1:main:{events:0}:d:2026-01-03", prefix, IDS) == ("d", None)
    assert kind_of("bench-1:main:meta", prefix, IDS) == ("meta", None)
    assert kind_of("bench-1:namespace", prefix, IDS) == ("namespace", None)
    assert kind_of("bench-1:main:{events:0}:c:c0000011", prefix, IDS) == ("c", None)  # not a known id


def test_footprint_divides_by_customers_and_round_trips_as_json() -> None:
    footprint = Footprint(
        customers=4,
        customer_keys=8,
        customer_bytes=4000,
        aggregate_keys=2,
        aggregate_bytes=1000,
        used_memory_delta=5600,
        kinds={"c:<id>": (4, 3000), "h:<id>": (4, 1000), "m": (2, 1000)},
    )
    assert footprint.per_customer == 1250
    assert footprint.figures() == {
        "bytes/customer": 1250.0,
        "  per-customer keys": 1000.0,
        "  partition aggregates": 250.0,
        "  used_memory freed by drop": 1400.0,
    }
    assert Footprint.from_json(footprint.to_json()) == footprint
    lines = footprint.lines()
    assert lines[0] == (
        "  Redis memory 1,250 bytes/customer (4 customers): per-customer keys 1,000 (8 keys), "
        "aggregates 250 (2 keys); used_memory freed by dropping them 1,400"
    )
    assert [line.split()[0] for line in lines[1:]] == ["c:<id>", "h:<id>", "m"]  # largest first
    assert math.isnan(Footprint(1, 1, 10, 0, 0).figures()["  used_memory freed by drop"])


def test_side_by_side_prints_medians_and_after_over_before() -> None:
    before = [{"events/s": 100.0, "bytes": 7000.0}, {"events/s": 300.0, "bytes": 7400.0}, {"events/s": 200.0}]
    after = [{"events/s": 800.0, "bytes": 1000.0}, {"events/s": 1000.0, "bytes": 1000.0}]
    assert side_by_side(before, after, ("before", "after")) == [
        "                    before         after  after/before",
        "  events/s             200           900         4.50x",
        "  bytes              7,200         1,000         0.14x",
    ]
    missing = side_by_side([{"x": 1.0}], [{"x": float("nan")}], ("old", "new"))
    assert missing[1] == "  x            1.00             -             -"
