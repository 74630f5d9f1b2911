"""`calibrate --model clv` on hostile histories: a clear one-line refusal (exit 2) or sane, loadable output.

Every repeat buyer with the same price and the same rhythm (a subscription box) has no spread at all: the
likelihoods run to the edge of the float range (gamma underflows to 0) and `math.log(0)` ended the command
with a traceback (exit 1). Such data has a sane answer (everyone buys every 30 days, 40 EUR a time), so it
must come out: finite, non-negative, loadable parameters and tiers.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from segmentation import Definitions
from streams.cli import main

START = datetime(2026, 1, 1, tzinfo=UTC)


def _write(path: Path, purchases: list[tuple[str, datetime, str]], kind: str = "purchase") -> Path:
    with path.open("w") as out:
        for n, (customer, at, amount) in enumerate(sorted(purchases, key=lambda p: p[1])):
            event: dict[str, Any] = {
                "event_id": f"e{n}", "customer_id": customer, "occurred_at": at.isoformat(),
                "schema_version": 1, "type": kind,
            }  # fmt: skip
            if kind == "purchase":
                event |= {"order_id": f"o{n}", "amount": amount, "currency": "EUR", "channel": "web"}
            out.write(json.dumps(event) + "\n")
    return path


def _run(path: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["calibrate", "--model", "clv", "--events", str(path), "--output", str(out), "--json"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_same_price_same_rhythm_gives_a_sane_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    buys = [(f"c{i}", START + timedelta(days=30 * k, hours=i), "40.00") for i in range(50) for k in range(6)]
    code, out, err = _run(_write(tmp_path / "regular.jsonl", buys), tmp_path / "next.yaml", capsys)
    assert code == 0, err
    report = json.loads(out)
    bounds = [float(t["from"]) for t in report["tiers"]]
    assert all(math.isfinite(b) and b >= 0 for b in bounds)
    new = Definitions.from_yaml(tmp_path / "next.yaml")
    assert new.clv is not None


@pytest.mark.parametrize(
    ("purchases", "kind", "message"),
    [
        ([(f"c{i}", START + timedelta(days=i), "40.00") for i in range(50)], "purchase", "repeat buyer"),
        ([("c1", START + timedelta(days=7 * k), "40.00") for k in range(20)], "purchase", "at least 10"),
        ([(f"c{i}", START + timedelta(days=i), "0") for i in range(50)], "web_visit", "got 0 customers"),
    ],
)
def test_data_that_cannot_identify_the_model_is_one_line_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    purchases: list[tuple[str, datetime, str]],
    kind: str,
    message: str,
) -> None:
    code, _, err = _run(_write(tmp_path / "e.jsonl", purchases, kind), tmp_path / "next.yaml", capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "next.yaml").exists()
