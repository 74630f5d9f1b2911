"""A worker started without SEGSTREAM_NAMESPACE follows `segstream promote` while it runs: it stops writing
into the old namespace and resumes in the promoted one after the offsets stored there, so the promoted
namespace ends equal to a replay of the whole log (nothing skipped, nothing counted twice)."""

from __future__ import annotations

import asyncio
import gzip
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from segmentation import Definitions
from streams.bootstrap import keyspace, worker_runtime
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.namespaces import promote
from streams.store.redis_store import RedisStateStore
from streams.worker.namespace_follow import DefinitionsMismatch
from tests.integration.replay_helpers import customers_of, dump_namespace, replay_file
from tests.integration.test_definitions_change import changed_definitions
from tests.integration.test_replay import produce_like_the_file
from tests.integration.test_worker_kill import caught_up, end_offsets
from tests.integration.worker_harness import applied_offsets, make_settings
from tests.services import Services


async def until(condition: Callable[[], bool], worker: asyncio.Task[None], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if worker.done():
            worker.result()
            raise AssertionError("worker stopped by itself")
        assert time.monotonic() < deadline, "condition not reached before timeout"
        await asyncio.sleep(0.1)


@pytest.mark.cluster
def test_a_running_worker_follows_promote_to_a_namespace_behind_it(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    spec = sample.SampleSpec(customers=150, days=365, seed=31)
    whole = tmp_path / "whole.jsonl.gz"
    sample.write_jsonl(spec, whole)
    lines = [x for x in gzip.decompress(whole.read_bytes()).splitlines() if x.strip()]
    half, rebuilt_from = len(lines) // 2, len(lines) * 2 // 5
    head = tmp_path / "head.jsonl"
    head.write_bytes(b"\n".join(lines[:rebuilt_from]) + b"\n")

    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=4, batch_max_events=300)
    assert settings.namespace is None, "an unpinned worker is the one that follows"
    in_ns: Callable[[str], Settings] = lambda ns: settings.model_copy(update={"namespace": ns})  # noqa: E731
    # "rebuilt" lags the log (40% of it) at promote time; "reference" is the whole log, replayed
    asyncio.run(replay_file(settings, head, "rebuilt", tmp_path))
    asyncio.run(replay_file(settings, whole, "reference", tmp_path))

    async def scenario() -> dict[int, int]:
        await produce_like_the_file(settings, lines[:half])
        first_ends = end_offsets(settings)
        client = async_client(settings.redis_url)
        try:
            async with worker_runtime(settings) as runtime:
                assert runtime.settings.namespace == "main"
                task = asyncio.create_task(runtime.worker.run())
                try:
                    await until(caught_up(in_ns("main"), first_ends), task)
                    await promote(client, settings.key_prefix, "rebuilt")
                    follow = runtime.worker.follow
                    assert follow is not None
                    await until(lambda: follow.current == "rebuilt", task, timeout=10)
                    await produce_like_the_file(settings, lines[half:])
                    await until(caught_up(in_ns("rebuilt"), end_offsets(settings)), task)
                finally:
                    runtime.worker.stop()
                    await asyncio.wait_for(task, 30)
        finally:
            await client.aclose()
        return first_ends

    first_ends = asyncio.run(scenario())

    rebuilt, reference = dump_namespace(settings, "rebuilt"), dump_namespace(settings, "reference")
    assert customers_of(rebuilt) == customers_of(reference), "promoted namespace == replay of the whole log"
    assert applied_offsets(in_ns("rebuilt")) == applied_offsets(in_ns("reference"))
    # once the worker followed, nothing more went into the old namespace
    assert applied_offsets(in_ns("main")) == {p: end - 1 for p, end in first_ends.items()}


def test_a_partition_the_worker_was_fenced_out_of_is_claimed_again_in_the_promoted_namespace(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """Fenced out of a partition in the old namespace (another process claimed it there), the worker still
    has it assigned: in the promoted namespace nobody else owns it, so the worker claims it like the others
    and applies its events. Before, only the partitions it owned moved: the fenced one stayed paused until
    `FencedStall` stopped the worker, and its events waited for a restart."""
    spec = sample.SampleSpec(customers=80, days=200, seed=17)
    whole = tmp_path / "whole.jsonl"
    sample.write_jsonl(spec, whole)
    lines = [x for x in whole.read_bytes().splitlines() if x.strip()]
    half, rebuilt_from = len(lines) // 2, len(lines) * 2 // 5
    head = tmp_path / "head.jsonl"
    head.write_bytes(b"\n".join(lines[:rebuilt_from]) + b"\n")
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2, fenced_grace_s=6)
    in_ns: Callable[[str], Settings] = lambda ns: settings.model_copy(update={"namespace": ns})  # noqa: E731
    asyncio.run(replay_file(settings, head, "rebuilt", tmp_path))
    asyncio.run(replay_file(settings, whole, "reference", tmp_path))

    async def scenario() -> None:
        await produce_like_the_file(settings, lines[:half])
        client = async_client(settings.redis_url)
        try:
            async with worker_runtime(settings) as runtime:
                worker = runtime.worker
                task = asyncio.create_task(worker.run())
                try:
                    await until(caught_up(in_ns("main"), end_offsets(settings)), task)
                    # another process takes partition 0 of "main"; the worker's next commit there is refused
                    await RedisStateStore(client, keyspace(in_ns("main"))).claim(0)
                    await produce_like_the_file(settings, lines[half : half + 40])
                    await until(lambda: 0 in worker.fenced_since, task, timeout=30)
                    await promote(client, settings.key_prefix, "rebuilt")
                    await produce_like_the_file(settings, lines[half + 40 :])
                    # with the fenced partition left behind, FencedStall ends the worker (6 s) and this raises
                    await until(caught_up(in_ns("rebuilt"), end_offsets(settings)), task, timeout=60)
                    assert worker.follow is not None and worker.follow.current == "rebuilt"
                    assert sorted(worker.owned) == [0, 1] and not worker.fenced_since
                finally:
                    worker.stop()
                    await asyncio.wait_for(task, 30)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    rebuilt, reference = dump_namespace(settings, "rebuilt"), dump_namespace(settings, "reference")
    assert customers_of(rebuilt) == customers_of(reference), "nothing of partition 0 skipped or doubled"
    assert applied_offsets(in_ns("rebuilt")) == applied_offsets(in_ns("reference"))


def test_a_worker_refuses_to_follow_into_a_namespace_built_with_other_definitions(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    """Following would re-segment the promoted namespace's customers back to the worker's definitions."""
    spec = sample.SampleSpec(customers=40, days=120, seed=8)
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(spec, path)
    lines = [x for x in path.read_bytes().splitlines() if x.strip()]
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    other = Definitions.from_mapping(changed_definitions(random.Random(4)))
    asyncio.run(replay_file(settings, path, "other", tmp_path, definitions=other))
    before = customers_of(dump_namespace(settings, "other"))

    async def scenario() -> None:
        await produce_like_the_file(settings, lines)
        client = async_client(settings.redis_url)
        try:
            async with worker_runtime(settings) as runtime:
                task = asyncio.create_task(runtime.worker.run())
                try:
                    await until(
                        caught_up(settings.model_copy(update={"namespace": "main"}), end_offsets(settings)),
                        task,
                    )
                    await promote(client, settings.key_prefix, "other")
                    with pytest.raises(DefinitionsMismatch, match="built with definitions 'test-2'"):
                        await asyncio.wait_for(task, 30)
                finally:
                    runtime.worker.stop()
        finally:
            await client.aclose()

    asyncio.run(scenario())

    async def restart() -> None:  # a supervisor restarting the worker meets the same rule at start-up
        async with worker_runtime(settings):
            raise AssertionError("a worker started on a namespace recorded with other definitions")

    with pytest.raises(DefinitionsMismatch, match="SEGSTREAM_ADOPT_DEFINITIONS"):
        asyncio.run(restart())
    assert customers_of(dump_namespace(settings, "other")) == before, "nothing written into it"
    main_metrics = dump_namespace(settings, "main", skip=())["metrics"]
    assert "w:retired:events" in main_metrics, "the worker retired from the old namespace: its totals folded"
    assert not any(k.endswith(":updated_at") for k in main_metrics), "and its own fields gone"
