"""docs/export.md: "For a copy kept exact over time: note the time just before the full export, export, then
sync with --cursor-file FILE --since <that time>". A worker that crashed between publishing a batch's
transitions and committing it (README: republished with the same ids) leaves the original on the topic
*before* the noted time while Redis, and so the export, does not have the move yet. The restarted worker
republishes the move after the noted time. Found in review: the first sync dropped it as a copy of a record
of its lookback, so the customer was in the segment and in neither the export nor the sync. The first sync
of a cursor file now gives end states (`netting.end_states`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.bootstrap import worker_runtime
from streams.worker.pipeline import BatchPipeline
from tests.integration.test_export_changes import cli, members, settled
from tests.integration.test_worker_history import purchase
from tests.integration.worker_harness import customer_key, make_settings, produce, run_worker_until
from tests.services import Services

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Crash(Exception):
    pass


def test_export_then_first_sync_after_a_crash_between_publish_and_commit(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    # phase 1 (normal): b1 enters lifecycle/new
    asyncio.run(produce(settings, [purchase("b1-o1", "b1", T0)], customer_key))
    asyncio.run(run_worker_until(settings, settled(settings, 1)))
    assert members(settings) == {"b1"}

    # phase 2: a1's first purchase; the worker publishes a1's entry, then dies before its commit
    original = BatchPipeline._commit

    async def crashing_commit(self: Any, owned: Any, result: Any, *rest: Any) -> bool:
        if any(t.customer_id == "a1" for t in result.transitions):
            raise Crash("killed between publish and commit")
        return await original(self, owned, result, *rest)

    async def crash_run() -> None:
        await produce(settings, [purchase("a1-o1", "a1", T0 + timedelta(hours=1))], customer_key)
        async with worker_runtime(settings) as runtime:
            try:
                await asyncio.wait_for(runtime.worker.run(), 60)
            except Crash:
                return
            raise AssertionError("the worker did not reach the crash")

    monkeypatch.setattr(BatchPipeline, "_commit", crashing_commit)
    asyncio.run(crash_run())
    monkeypatch.setattr(BatchPipeline, "_commit", original)

    # the CRM's procedure: note the time just before the full export, export, first sync from that time
    time.sleep(0.05)
    noted = datetime.now(UTC)
    time.sleep(0.05)
    export = cli(settings, "--columns", "customer_id")
    assert export.returncode == 0, export.stderr
    crm = set(export.stdout.splitlines()[1:])
    assert crm == {"b1"}  # a1's move was not committed: not a member yet

    # the worker restarts, republishes a1's entry (same id) and commits it
    asyncio.run(run_worker_until(settings, settled(settings, 2)))
    assert members(settings) == {"a1", "b1"}

    cursor_file = tmp_path / "crm.cursor"
    sync = cli(settings, "--cursor-file", str(cursor_file), "--since", noted.isoformat(), "--format", "jsonl")
    assert sync.returncode == 0, sync.stderr
    import orjson

    for row in map(orjson.loads, sync.stdout.splitlines()):
        if row["change"] == "entered":
            crm.add(row["customer_id"])
        else:
            crm.discard(row["customer_id"])
    assert crm == members(settings), f"CRM after export + first sync: {crm}; stderr: {sync.stderr}"
