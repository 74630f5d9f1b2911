"""`segstream calibrate --model clv`: an event file in, a definitions version with the fitted model out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segmentation import Definitions
from streams.cli import main


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clv") / "events.jsonl"
    assert main(["sample", "--customers", "400", "--days", "300", "--seed", "7", "--output", str(path)]) == 0
    return path


def test_calibrate_writes_a_definitions_version_with_the_fitted_model(
    events: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "next.yaml"
    args = [
        "calibrate",
        "--model",
        "clv",
        "--events",
        str(events),
        "--until",
        "2026-08-31",
        "--output",
        str(out),
    ]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    new = Definitions.from_yaml(out)
    assert new.clv is not None and new.version == report["new_version"] != Definitions.default().version
    assert [t["segment"] for t in report["tiers"]] == ["low", "medium", "high", "top"]
    assert (
        report["fitted"]["until"] == "2026-08-31T23:59:59.999999+00:00" and report["events_after_until"] > 0
    )
    assert sum(report["customers_per_tier"].values()) == report["fitted"]["customers"] > 100
    assert dict(new.clv.fitted)["customers"] == str(report["fitted"]["customers"])
    assert new.clv.bgnbd.r == float(report["bgnbd"]["r"]) and new.clv.gamma_gamma.q > 1
    assert main(args) == 0  # and the table for a person
    assert "BG/NBD        r = " in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_2(events: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--model", "clv"]) == 2
    assert "needs --events FILE" in capsys.readouterr().err
    assert main(["calibrate", "--model", "clv", "--events", "/nonexistent.jsonl"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["calibrate", "--model", "clv", "--events", str(events), "--until", "soon"]) == 2
    assert "not an ISO date" in capsys.readouterr().err
    assert (
        main(["calibrate", "--model", "clv", "--events", str(events), "--until", "2026-01-01T00:00:00Z"]) == 2
    )
    assert "at least 10 customers" in capsys.readouterr().err
