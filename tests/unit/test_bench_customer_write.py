"""`benchmarks/bench_customer_write.py` runs on a small sample and prints every row it documents."""

from __future__ import annotations

import sys

import pytest

from benchmarks import bench_customer_write


def test_it_prints_the_batch_sizes_and_the_parts_of_a_write(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        sys, "argv", ["bench_customer_write.py", "--events", "3000", "--per-customer", "60", "--rounds", "1"]
    )
    bench_customer_write.main()
    out = capsys.readouterr().out
    assert "sample: " in out and "events, 50 customers" in out
    for size in ("8000", "2000", "500", "150"):
        assert f"\n  {size:>6} " in out
    for row in ("changed_parts", "surrogateescape decode", "commit's encode", "history appended now", "KPI"):
        assert row in out
