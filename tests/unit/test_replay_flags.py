"""`replay --until/--since` and namespace names: refused in one line (exit 2) before anything is touched."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.admin.definitions_command import _namespace
from streams.cli import main
from streams.replay.time_flags import time_flag
from streams.settings import Settings
from streams.store.namespaces import NamespaceError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-12-01T00:00:00Z", datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-12-01t02:00:00+02:00", datetime(2026, 12, 1, tzinfo=UTC)),
        ("1900-01-01T00:00:00Z", datetime(1900, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_time_with_its_offset_is_read_in_utc(raw: str, expected: datetime) -> None:
    assert time_flag("--since", raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("yesterday", "is not an RFC 3339 time"),
        ("2026-12-01", "has no UTC offset"),  # read as UTC, a shell at UTC+2 would skip two hours
        ("2026-12-01T00:00:00", "has no UTC offset"),
        ("9999-12-31T23:59:59-01:00", "outside the years 1-9999"),  # was an OverflowError traceback
        ("0001-01-01T00:00:00+01:00", "outside the years 1-9999"),
    ],
)
def test_anything_else_is_one_line(raw: str, reason: str) -> None:
    refused = time_flag("--until", raw)
    assert isinstance(refused, str) and reason in refused and refused.startswith(f"--until {raw!r}")


def test_the_hint_itself_is_accepted() -> None:
    """The refusal's examples were `2026-12-31Z` and `2026-12-31+02:00`, both refused in turn."""
    refused = time_flag("--until", "2026-12-31")
    assert isinstance(refused, str)
    for example in ("2026-12-01T00:00:00Z", "2026-12-01T00:00:00+02:00"):
        assert example in refused and isinstance(time_flag("--until", example), datetime)


@pytest.mark.parametrize("name", ["bad name*", "a:b", "", "namespace"])
def test_replay_refuses_a_namespace_name_before_anything(name: str, tmp_path: Path) -> None:
    """It waited for Redis first (exit 4 with Redis down) and had made its output folder."""
    out = tmp_path / "replays"
    code = main(["replay", str(tmp_path / "e.jsonl"), "--namespace", name, "--output-dir", str(out)])
    assert code == 2 and not out.exists()


@pytest.mark.parametrize("name", ["", "a*b:c", "namespace"])
def test_definitions_commands_refuse_a_namespace_name(name: str) -> None:
    """`--namespace ""` (an unset shell variable) meant the active namespace: `definitions apply` with it
    re-segmented the live one; `--create` skipped the name check and wrote keys `drop` then refused."""
    args = argparse.Namespace(namespace=name, create=True)
    with pytest.raises(NamespaceError):
        asyncio.run(_namespace(Settings(), None, args))  # type: ignore[arg-type]
