"""A worker refuses a namespace that a drop or replay rewrites now, or that one left half done, on the real
Redis and Kafka, before it writes anything into it.

Why: `namespaces drop` and `replay --force` refuse to start under running workers, but a worker started
*after* their check, or after one of them was killed, used to start on what they left: a drop's leftovers
(keys with no definitions record, which the worker's start would record again) or part of a log. The drop
here is interrupted at its first UNLINK (its process killed, as an operator's Ctrl-C would), not by load.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis.exceptions import ResponseError

from streams import bootstrap, cli
from streams.bootstrap import worker_runtime
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store import namespaces
from streams.store.connection import async_client
from streams.store.keys import KeySpace, building_key
from streams.store.namespace_lease import holder_note, leased
from streams.store.namespaces import NamespaceRefused
from streams.store.redis_store import RedisStateStore
from tests.integration.worker_harness import make_settings
from tests.services import Services


class _Killed(Exception):
    """Stands for the drop's process dying at the await where it deletes its first batch."""


def _replayed(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path, mp: Any
) -> Settings:
    """Settings of a worker pinned to namespace `built`, which a replay of a small sample filled."""
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=30, days=20, seed=5, malformed_share=0.0), path)
    settings = make_settings(services, topic_name, redis_prefix, namespace="built", connect_timeout_s=5)
    for name, value in settings.as_environment({}).items():
        mp.setenv(name, value)
    argv = ["replay", str(path), "--namespace", "built", "--out-dir", str(tmp_path), "--no-progress"]
    assert cli.main(argv) == 0
    return settings


async def _keys(settings: Settings) -> list[bytes]:
    client = async_client(settings.redis_url)
    try:
        return sorted([k async for k in client.scan_iter(match=f"{settings.key_prefix}:built:*", count=500)])
    finally:
        await client.aclose()


async def _start(settings: Settings) -> str | None:
    """The refusal a worker's start gives (None: it started), as the CLI would print it."""
    try:
        async with worker_runtime(settings):
            return None
    except NamespaceRefused as exc:
        assert exc.exit_code == 3
        return str(exc)


def test_a_worker_refuses_what_an_interrupted_drop_left_and_starts_once_the_drop_is_run_again(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _replayed(services, topic_name, redis_prefix, tmp_path, monkeypatch)
    keyspace = KeySpace(settings.key_prefix, "built", settings.events_topic)

    async def interrupted_drop() -> None:
        client = async_client(settings.redis_url)
        unlink = client.unlink

        async def die_at_the_first_batch(*keys: Any) -> int:
            if len(keys) > 1 or keys[0] != keyspace.definitions():
                raise _Killed
            return int(await unlink(*keys))

        try:
            monkeypatch.setattr(client, "unlink", die_at_the_first_batch)
            with pytest.raises(_Killed):
                async with leased(client, settings.key_prefix, "built", holder_note(drop="built")):
                    await namespaces.drop(client, settings.key_prefix, "built")
        finally:
            await client.aclose()

    asyncio.run(interrupted_drop())
    left = asyncio.run(_keys(settings))
    assert keyspace.definitions().encode() not in left and len(left) > 10, "the drop stopped half way"
    refusal = asyncio.run(_start(settings))
    assert refusal is not None and "the drop stopped before its end" in refusal, refusal
    assert "segstream drop built" in refusal, refusal
    assert asyncio.run(_keys(settings)) == left, "the refused worker wrote nothing (no definitions record)"

    proc = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=settings.as_environment(),
        capture_output=True,
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 3 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("segstream worker: namespace 'built' was being dropped")

    assert cli.main(["drop", "built"]) == 0
    assert asyncio.run(_keys(settings)) == []
    assert asyncio.run(_start(settings)) is None, "an empty namespace: a worker starts it"


def test_a_worker_refuses_a_namespace_being_rewritten_and_an_incomplete_one_unless_promoted_as_it_is(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _replayed(services, topic_name, redis_prefix, tmp_path, monkeypatch)
    replay_mark = b'{"replay": "orders.jsonl", "started": "2026-12-07T10:00:00+00:00", "pid": 7}'

    async def scenario() -> list[str | None]:
        client = async_client(settings.redis_url)
        try:
            seen: list[str | None] = []
            async with leased(client, settings.key_prefix, "built", holder_note(drop="built")):
                seen.append(await _start(settings))  # a drop running now, before its first delete
            await client.set(building_key(settings.key_prefix, "built"), replay_mark)
            seen.append(await _start(settings))  # a replay that stopped before its end
            await namespaces.promote(client, settings.key_prefix, "built", require_complete=False)
            seen.append(await _start(settings))  # chosen as it is: workers follow it
            unpinned = settings.model_copy(update={"namespace": None})
            seen.append(await _start(unpinned))
            await client.set(building_key(settings.key_prefix, "built"), b'{"drop": "built", "pid": 8}')
            seen.append(await _start(settings))  # a mark on the active namespace nobody accepted: refused
            await namespaces.promote(client, settings.key_prefix, "built", require_complete=False)
            seen.append(await _start(settings))  # a drop's mark, promoted as it is: chosen too (not refused
            return seen  # with advice to drop what `drop` refuses as the active namespace)
        finally:
            await client.aclose()

    running, incomplete, promoted, following, unaccepted, dropped_active = asyncio.run(scenario())
    assert running is not None and "is being rewritten right now" in running and '"drop"' in running, running
    assert incomplete is not None and "a replay into it stopped before its end" in incomplete, incomplete
    assert "orders.jsonl" in incomplete and "--allow-incomplete" in incomplete, incomplete
    assert (promoted, following, dropped_active) == (None, None, None)
    assert unaccepted is not None and "the active namespace 'built' is incomplete" in unaccepted, unaccepted
    assert "`segstream promote built --allow-incomplete`" in unaccepted, unaccepted


def test_a_killed_first_import_into_the_active_namespace_stops_workers_until_it_is_accepted(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`replay --into-active` that stopped before its end left its mark on the *active* namespace, which the
    workers took for one promoted with `--allow-incomplete`: they wrote live events on top of part of the log
    (review of 7 December 2026). Its fourth commit is refused here, as a Redis out of memory would."""
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=200, days=300, seed=9, malformed_share=0.0), path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2, connect_timeout_s=5)
    for name, value in settings.as_environment({}).items():
        monkeypatch.setenv(name, value)
    real, calls = RedisStateStore.commit, 0

    async def refused_once(self: RedisStateStore, *args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise ResponseError("OOM command not allowed when used memory > 'maxmemory'.")
        await real(self, *args)

    monkeypatch.setattr(RedisStateStore, "commit", refused_once)
    argv = ["replay", str(path), "--namespace", "main", "--into-active", "--batch", "300", "--no-progress"]
    assert cli.main([*argv, "--out-dir", str(tmp_path)]) != 0
    monkeypatch.setattr(RedisStateStore, "commit", real)

    async def main_keys() -> list[bytes]:
        client = async_client(settings.redis_url)
        try:
            match = f"{settings.key_prefix}:main:*"
            return sorted([k async for k in client.scan_iter(match=match, count=500)])
        finally:
            await client.aclose()

    left = asyncio.run(main_keys())
    assert len(left) > 10, "the import stopped half way, its commits kept"
    refusal = asyncio.run(_start(settings))  # a worker following the pointer: `main`, the active one
    assert refusal is not None and "the active namespace 'main' is incomplete" in refusal, refusal
    assert "--into-active stopped before its end" in refusal and str(path) in refusal, refusal
    assert asyncio.run(main_keys()) == left, "the refused worker wrote nothing"

    assert cli.main(["promote", "main", "--allow-incomplete"]) == 0  # the operator takes it as it is
    assert asyncio.run(_start(settings)) is None


def test_a_drop_begun_after_a_worker_s_start_check_is_seen_at_its_claim(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`drop` refuses a namespace a worker reports on, but a worker reports only after its first batch: a drop
    begun between the worker's start and that report went on under it. The drop takes its lease at the await
    where the worker's first claim begins (its claims may run in the consumer's rebalance, before `run`); the
    claim is refused, no partition is claimed."""
    settings = _replayed(services, topic_name, redis_prefix, tmp_path, monkeypatch)
    check = bootstrap.refuse_marked
    drop: list[Any] = []
    drop_client: Any = None

    async def drop_then_check(settings: Settings, client: Any, namespace: str | None = None) -> None:
        if namespace is not None and not drop:  # a claim's check (the start-up one names no namespace)
            drop.append(leased(drop_client, settings.key_prefix, "built", holder_note(drop="built")))
            await drop[0].__aenter__()
        await check(settings, client, namespace)

    async def scenario() -> tuple[str, list[bytes], list[bytes]]:
        nonlocal drop_client
        drop_client = async_client(settings.redis_url)
        before = await _keys(settings)
        monkeypatch.setattr(bootstrap, "refuse_marked", drop_then_check)
        try:
            async with worker_runtime(settings) as runtime:
                with pytest.raises(NamespaceRefused) as refused:
                    await asyncio.wait_for(runtime.worker.run(), 60)
            return str(refused.value), before, await _keys(settings)
        finally:
            if drop:
                await drop[0].__aexit__(None, None, None)
            await drop_client.aclose()

    refusal, before, after = asyncio.run(scenario())
    assert "is being rewritten right now" in refusal and '"drop"' in refusal, refusal
    assert after == before, "no claim: nothing written"


def test_promote_refuses_a_namespace_a_replay_rewrites_now_even_allowed_incomplete(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`promote --allow-incomplete` under a running replay sent the following workers into it, where their
    next claim now refuses them (review of 7 December 2026). A replay taking its lease at the await before the
    promote's SET of the pointer is seen by the look after it: the pointer is put back, and the stamp the
    promote set on the mark a killed replay left is taken back (review of 8 December 2026)."""
    settings = _replayed(services, topic_name, redis_prefix, tmp_path, monkeypatch)
    note = holder_note(replay="orders.jsonl")
    mark = b'{"replay": "killed.jsonl", "started": "2026-12-08T01:00:00+00:00", "pid": 7}'

    async def scenario() -> tuple[str, str, object, object]:
        client = async_client(settings.redis_url)
        pointer = namespaces.pointer_key(settings.key_prefix)
        try:
            async with leased(client, settings.key_prefix, "built", note):
                with pytest.raises(NamespaceRefused) as running:
                    await namespaces.promote(client, settings.key_prefix, "built", require_complete=False)
            set_pointer = client.set
            lease: list[Any] = []

            async def lease_then_set(*args: Any, **kwargs: Any) -> Any:
                if args and args[0] == pointer and not lease:  # the replay starts right before the SET
                    lease.append(leased(client, settings.key_prefix, "built", note))
                    await lease[0].__aenter__()
                return await set_pointer(*args, **kwargs)

            await set_pointer(building_key(settings.key_prefix, "built"), mark)  # a replay killed earlier
            monkeypatch.setattr(client, "set", lease_then_set)
            with pytest.raises(NamespaceRefused) as racing:
                await namespaces.promote(client, settings.key_prefix, "built", require_complete=False)
            await lease[0].__aexit__(None, None, None)
            left = await client.get(building_key(settings.key_prefix, "built"))
            return str(running.value), str(racing.value), await client.get(pointer), left
        finally:
            await client.aclose()

    running, racing, pointer, left = asyncio.run(scenario())
    assert "is being rewritten now" in running and "orders.jsonl" in running, running
    assert "is being rewritten now" in racing, racing
    assert left == mark, "the refused promote took its stamp back"
    assert pointer is None, "the pointer put back: `main` stays active"
