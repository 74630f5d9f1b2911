"""Incremental syncs (`export --cursor-file`) keep the CRM's copy of a segment exact where it went wrong
(review of 7 December 2026, a helper's failing tests; each compares the CRM copy, export rows plus sync rows
applied, with the segment's members in Redis):
- retention deleting a look-back record while a sync read it made the reading consumer jump to the end
  (aiokafka's default reset "latest"): 19 of 40 entries, exit 0, and a cursor past the lost ones;
- a sync whose rows the CRM applied but whose cursor was not saved, run again, netted a leave and a return
  to nothing: the CRM kept the leave for good;
- after `replay kafka:` + `promote` (a definitions change), a sync from the old cursor answered nothing, the
  promote's moves not being on the topic: the CRM kept a customer no longer a member."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

import streams.read.changes as changes_module
from streams.read.changes import ChangesError, changes
from streams.settings import Settings
from tests.integration.test_export_changes import delete_records, settled
from tests.integration.test_worker_history import ev, purchase
from tests.integration.worker_harness import (
    customer_key,
    make_settings,
    produce,
    run_worker_until,
    stored_customers,
)
from tests.services import Services

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _cli(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**settings.as_environment(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _members(settings: Settings, grid: str, segment: str) -> set[str]:
    return {cid for cid, row in stored_customers(settings).items() if row.get(grid) == segment}


def _phase(settings: Settings, lines: list[bytes], total: int) -> None:
    async def go() -> None:
        await produce(settings, lines, customer_key)
        await run_worker_until(settings, settled(settings, total))

    asyncio.run(go())


def _applied(crm: set[str], stdout: str) -> set[str]:
    out = set(crm)
    for row in map(orjson.loads, stdout.splitlines()):
        (out.add if row["change"] == "entered" else out.discard)(row["customer_id"])
    return out


def _exported(settings: Settings, grid: str, segment: str, env: dict[str, str] | None = None) -> set[str]:
    done = _cli(settings, "export", grid, segment, "--columns", "customer_id", env=env)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[1:])


def _noted() -> datetime:
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    return moment


def test_retention_during_a_sync_is_read_past_or_refused_never_answered_short(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    old = [purchase(f"old{n}-o1", f"old{n}", T0) for n in range(10)]
    _phase(settings, old, len(old))
    _, previous = asyncio.run(changes(settings, "lifecycle", "new", since=T0))  # the last sync's cursor
    before = _members(settings, "lifecycle", "new")
    new = [purchase(f"c{n}-o1", f"c{n}", T0 + timedelta(minutes=n)) for n in range(40)]
    _phase(settings, new, len(old) + len(new))
    entered = _members(settings, "lifecycle", "new") - before
    assert len(entered) == 40
    real_window, cut = changes_module.window, {"inside": False}

    async def window_then_retention(*args: Any, **kwargs: Any) -> Any:
        span = await real_window(*args, **kwargs)
        # retention deletes the partition's oldest record once the period's offsets are known: a look-back
        # record (read for its id only), or one of the period too
        upto = span.starts[0] + 1 if cut["inside"] else span.lookback[0] + 1
        assert span.lookback[0] < span.starts[0] < span.ends[0]
        await delete_records(settings, 0, upto)
        return span

    monkeypatch.setattr(changes_module, "window", window_then_retention)
    found, _ = asyncio.run(changes(settings, "lifecycle", "new", cursor=previous.cursor()))
    assert {c.customer_id for c in found if c.change == "entered"} == entered
    cut["inside"] = True
    with pytest.raises(ChangesError, match="retention removed records of the period while they were read"):
        asyncio.run(changes(settings, "lifecycle", "new", cursor=previous.cursor()))


def test_a_sync_run_again_after_its_cursor_was_not_saved_leaves_the_crm_exact(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    sync = ("export", "value", "low", "--cursor-file", str(tmp_path / "crm.cursor"), "--format", "jsonl")
    noted = _noted()
    _phase(settings, [purchase("c1-o1", "c1", T0, "60.00"), purchase("x1-o1", "x1", T0, "60.00")], 2)
    crm = _exported(settings, "value", "low")
    first = _cli(settings, *sync, "--since", noted.isoformat())
    assert first.returncode == 0, first.stderr
    crm = _applied(crm, first.stdout)
    assert crm == _members(settings, "value", "low") == {"c1", "x1"}
    _phase(settings, [purchase("c1-o2", "c1", T0 + timedelta(days=1), "100.00")], 3)  # c1 to medium
    (tmp_path / "crm.cursor.part").mkdir()  # the cursor cannot be saved (a full disk, a kill...)
    failed = _cli(settings, *sync)
    assert failed.returncode != 0
    crm = _applied(crm, failed.stdout)  # but its rows reached the CRM: `left c1`
    assert crm == {"x1"}
    (tmp_path / "crm.cursor.part").rmdir()
    refund = ev(
        "c1-r1", "refund", "c1", T0 + timedelta(days=2), order_id="o-c1-o2", amount="100.00", currency="EUR"
    )
    _phase(settings, [refund], 4)  # c1 back in low
    rerun = _cli(settings, *sync)
    assert rerun.returncode == 0, rerun.stderr
    assert _applied(crm, rerun.stdout) == _members(settings, "value", "low") == {"c1", "x1"}


def test_a_sync_from_a_cursor_of_the_namespace_before_a_promote_is_refused(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(services, topic_name, redis_prefix)  # follows the active namespace
    sync = ("export", "value", "low", "--cursor-file", str(tmp_path / "crm.cursor"), "--format", "jsonl")
    noted = _noted()
    _phase(settings, [purchase("c1-o1", "c1", T0, "60.00"), purchase("c2-o1", "c2", T0, "120.00")], 2)
    first = _cli(settings, *sync, "--since", noted.isoformat())
    assert first.returncode == 0, first.stderr
    text = resources.files("segmentation").joinpath("definitions.yaml").read_text(encoding="utf-8")
    defs = (
        tmp_path / "defs.yaml"
    )  # `medium` from 150 instead of 100: c2 (120.00) moves to low, by no transition
    changed = text.replace('{segment: medium, from: "100"}', '{segment: medium, from: "150"}')
    defs.write_text(changed.replace('\nversion: "', '\nversion: "sync-test-', 1))
    assert changed != text and "sync-test-" in defs.read_text()
    env = {"SEGSTREAM_DEFINITIONS_FILE": str(defs)}
    replay = ("replay", f"kafka:{settings.events_topic}", "--namespace", "rb", "--output-dir", str(tmp_path))
    for args in ((*replay, "--no-progress"), ("promote", "rb")):
        done = _cli(settings, *args, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    after = _cli(settings, *sync, env=env)
    assert after.returncode == 2 and after.stdout == ""
    assert "export the segment in full and start a new cursor" in after.stderr
    # the way out it names: a full export of the namespace now active, and a new cursor file
    assert _exported(settings, "value", "low", env) == {"c1", "c2"}  # c2 moved to low by the new tiers
