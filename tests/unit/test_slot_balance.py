"""The skew arithmetic of `segstream doctor`: largest node over the mean, every primary counted."""

from __future__ import annotations

import pytest

from streams.store.keys import KeySpace
from streams.store.slot_balance import PartitionLoad, _balance, skew


def test_skew_is_the_largest_node_over_the_mean() -> None:
    assert skew([100, 100, 100]) == 0.0
    assert skew([150, 75, 75]) == pytest.approx(0.5)
    assert skew([300, 0, 0]) == pytest.approx(2.0)
    assert skew([0, 0]) == 0.0 and skew([]) == 0.0


def test_a_primary_serving_no_partition_counts_and_the_warning_names_the_heaviest_node() -> None:
    keys = KeySpace("p", "main", "events")
    loads = [PartitionLoad(0, 1, "a:1", 60, 600), PartitionLoad(1, 2, "a:1", 40, 400)]
    balance = _balance(keys, ["a:1", "b:2"], loads, 0.25, "estimate", True)
    assert [(n.node, n.partitions, n.customers, n.customer_share) for n in balance.nodes] == [
        ("a:1", 2, 100, 1.0),
        ("b:2", 0, 0, 0.0),
    ]
    assert balance.customer_skew == pytest.approx(1.0) and balance.memory_skew == pytest.approx(1.0)
    assert len(balance.warnings) == 2
    assert balance.warnings[0].startswith("customers skewed: node a:1 holds 100% (+100% over the mean of 2")
    even = _balance(
        keys, ["a:1", "b:2"], [loads[0], PartitionLoad(1, 2, "b:2", 55, 550)], 0.25, "exact", True
    )
    assert even.warnings == [] and even.customer_skew == pytest.approx(60 / 57.5 - 1)
