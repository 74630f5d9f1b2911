"""With SEGSTREAM_LOG_FORMAT=json (or --log-format json) every line a command writes on stderr is one JSON
object, its final error line included, as the README promises ("one object per log line, any command"). The
one-line errors and the waiting lines were plain text in a JSON stream: a collector choked on them."""

from __future__ import annotations

import json

import pytest

from tests.integration.test_cli_failures import closed_port, segstream


def objects(stderr: str) -> list[dict[str, str]]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    return [json.loads(line) for line in lines]  # each line one object, or this raises


@pytest.mark.parametrize("how", ["env", "flag"])
def test_an_unreachable_redis_is_reported_in_json_objects(env: dict[str, str], how: str) -> None:
    extra = {
        "SEGSTREAM_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
        "SEGSTREAM_CONNECT_TIMEOUT_S": "1",
    }
    args = ["customer", "c1"]
    if how == "env":
        extra["SEGSTREAM_LOG_FORMAT"] = "json"
    else:
        args = ["--log-format", "json", *args]
    result = segstream(args, {**env, **extra})
    assert result.returncode == 4, result.stderr
    records = objects(result.stderr)
    assert all(set(r) >= {"time", "level", "logger", "message"} for r in records)
    assert records[-1]["level"] == "ERROR" and records[-1]["message"].startswith("segstream customer: ")
    assert "Traceback" not in result.stderr


def test_a_refused_setting_is_one_json_object(env: dict[str, str]) -> None:
    """Settings fail before they can say the log format: the environment's is used."""
    result = segstream(["worker"], env, SEGSTREAM_LOG_FORMAT="json", SEGSTREAM_GROUP_ID="")
    assert result.returncode == 2, result.stderr
    (record,) = objects(result.stderr)
    assert record["level"] == "ERROR" and "SEGSTREAM_GROUP_ID" in record["message"]


def test_text_stays_text(env: dict[str, str]) -> None:
    result = segstream(["customer", "c1"], env, SEGSTREAM_REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
                       SEGSTREAM_CONNECT_TIMEOUT_S="1")  # fmt: skip
    assert result.returncode == 4 and result.stderr.startswith("segstream customer: "), result.stderr


def test_a_warning_line_is_a_warning(env: dict[str, str]) -> None:
    """The doctor's warnings ("segstream doctor: warning: ...") are not its failure."""
    result = segstream(["doctor"], env, SEGSTREAM_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    warnings = [r for r in objects(result.stderr) if "holds nothing for topic" in r["message"]]
    assert [r["level"] for r in warnings] == ["WARNING"], result.stderr
