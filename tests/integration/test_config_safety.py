"""Hostile or broken configuration fails before anything starts: one line on stderr, exit code 2, no
traceback, within a second (issue 12: a 10,000-deep YAML used to end in a RecursionError traceback, an alias
bomb ran for more than 20 s). Also: serving without authentication is refused off loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

CASES = {
    "deep": "a: " + "[" * 10_000 + "]" * 10_000,
    "alias-bomb": "version: x\naudiences:\n  l0: &l0 ["
    + ",".join(["'lol'"] * 9)
    + "]\n"
    + "".join(f"  l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 9)),
    "huge": "version: '" + "x" * 300_000 + "'\n",
    "not-yaml": "a: [\n  b: c\n",
    "bad-value": "currency: '" + "X" * 5000 + "'\n",
}


def run(args: list[str], env: dict[str, str]) -> tuple[int, str, float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, result.stderr, time.monotonic() - started


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", [["worker"], ["api"]])
def test_hostile_definitions_exit_2_on_one_line(tmp_path: Path, case: str, command: list[str]) -> None:
    path = tmp_path / f"{case}.yaml"
    path.write_text(CASES[case], encoding="utf-8")
    keys = "k sha256:" + "0" * 64 + " segments:read"  # valid keys: the API gets as far as the definitions
    code, stderr, seconds = run(
        command, {"SEGSTREAM_DEFINITIONS_FILE": str(path), "SEGSTREAM_API_KEYS": keys}
    )
    assert code == 2 and f"{case}.yaml" in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr and len(stderr) < 400, stderr
    assert seconds < 20.0  # ~1 s on a quiet box; unguarded, the alias bomb runs into the 30 s timeout


def test_bad_settings_exit_2_naming_the_variable_not_the_value() -> None:
    code, stderr, _ = run(["worker"], {"SEGSTREAM_TOPIC_PARTITIONS": "s3cret-typo"})
    assert code == 2 and "SEGSTREAM_TOPIC_PARTITIONS" in stderr and "s3cret-typo" not in stderr


def test_no_auth_is_refused_off_loopback_and_keys_are_required() -> None:
    code, stderr, _ = run(["api", "--host", "0.0.0.0", "--no-auth"], {})
    assert code == 2 and "--no-auth is refused" in stderr
    code, stderr, _ = run(["api", "--host", "127.0.0.1"], {"SEGSTREAM_API_KEYS": ""})
    assert code == 2 and "no API keys configured" in stderr
    code, stderr, _ = run(["api"], {"SEGSTREAM_API_KEYS": "k sha256:1234 segments:read"})
    assert code == 2 and "64 hex digits" in stderr and len(stderr.splitlines()) == 1
