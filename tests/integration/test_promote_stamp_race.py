"""A promote refused after its look, on the real Redis and Kafka (review of 8 December 2026).

A `promote --allow-incomplete` that is *refused* left its `accepted` stamp on the mark of a `replay
--into-active` that began between the promote's first look (`_complete`) and the stamp. When that import
then stopped before its end, workers took the partial active namespace as accepted and wrote live events on
top of part of the log. Now the stamp is set only on the mark the promote looked at, and taken back if the
promote is refused after it (that take-back: test_worker_marked_namespace.py).

The interleaving is forced: the real `replay --into-active` (the CLI, in a thread) runs up to its fourth
commit at the await where `promote` calls `accept`; the fourth commit is then refused (OOM), as in
test_worker_marked_namespace's killed first import.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ResponseError

from streams import cli
from streams.sample import generator as sample
from streams.store import namespace_marks, namespaces
from streams.store.connection import async_client
from streams.store.keys import building_key
from streams.store.namespaces import NamespaceRefused
from streams.store.redis_store import RedisStateStore
from tests.integration.test_worker_marked_namespace import _start
from tests.integration.worker_harness import make_settings
from tests.services import Services


def test_a_refused_promote_does_not_accept_the_mark_of_an_import_that_then_stops(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=200, days=300, seed=9, malformed_share=0.0), path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2, connect_timeout_s=5)
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    prefix = settings.key_prefix

    real_commit, calls = RedisStateStore.commit, 0
    at_fourth, go_on = threading.Event(), threading.Event()

    async def stops_at_its_fourth_commit(self: RedisStateStore, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 4:
            at_fourth.set()  # the import is running: lease held, mark set, three commits in
            await asyncio.to_thread(go_on.wait)
            raise ResponseError("OOM command not allowed when used memory > 'maxmemory'.")
        await real_commit(self, *args)

    monkeypatch.setattr(RedisStateStore, "commit", stops_at_its_fourth_commit)
    argv = ["replay", str(path), "--namespace", "main", "--into-active", "--batch", "300", "--no-progress"]
    result: list[int] = []
    importer = threading.Thread(target=lambda: result.append(cli.main([*argv, "--out-dir", str(tmp_path)])))
    real_accept = namespace_marks.accept

    async def import_begins_then_accept(client: Any, prefix: str, name: str, seen: Any) -> bytes | None:
        # the await between the promote's first look (no lease, no mark) and its stamp
        importer.start()
        assert await asyncio.to_thread(at_fourth.wait, 60)
        return await real_accept(client, prefix, name, seen)

    async def scenario() -> tuple[str, Any]:
        client = async_client(settings.redis_url)
        try:
            monkeypatch.setattr(namespaces, "accept", import_begins_then_accept)
            # `promote main --allow-incomplete --allow-empty`
            with pytest.raises(NamespaceRefused) as refused:
                await namespaces.promote(client, prefix, "main", require_keys=False, require_complete=False)
            go_on.set()  # the import stops before its end
            await asyncio.to_thread(importer.join, 60)
            return str(refused.value), await client.get(building_key(prefix, "main"))
        finally:
            go_on.set()
            await client.aclose()

    refusal, mark = asyncio.run(scenario())
    monkeypatch.setattr(RedisStateStore, "commit", real_commit)
    assert "is being rewritten now" in refusal, refusal  # the promote was refused: nothing was accepted
    assert result and result[0] != 0, "the import stopped before its end"
    assert mark is not None, "the import's mark is left on the active namespace"
    refusal_of_worker = asyncio.run(_start(settings))
    stamped, worker_started = b"accepted" in mark, refusal_of_worker is None
    assert (stamped, worker_started) == (False, False), (
        f"stamped by the refused promote: {stamped}; a worker started on the partial import:"
        f" {worker_started}; mark {mark!r}"
    )
