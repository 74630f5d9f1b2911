"""A namespace is built for one partition count: a replay keys every customer by `partition_for(id,
SEGSTREAM_TOPIC_PARTITIONS)` and stores offsets per partition. A worker with another count would look for
its customers in other partitions' keys and resume partitions at offsets of another partitioning: some
events applied twice, others never, customers split in two, without a word. So a replay records its count,
and a worker refuses (exit 3) a namespace recording another one, at start-up and on a promote (found in
review, 6 December 2026: a replay run from a shell with the default 4 and promoted under workers of 2
was followed silently)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.bootstrap import worker_runtime
from streams.sample import generator as sample
from streams.store.connection import async_client
from streams.store.namespaces import promote
from streams.worker.namespace_follow import DefinitionsMismatch
from tests.integration.replay_helpers import dump_namespace, replay_file
from tests.integration.test_promote_follow import until
from tests.integration.test_replay import produce_like_the_file
from tests.integration.test_worker_kill import caught_up, end_offsets
from tests.integration.worker_harness import make_settings
from tests.services import Services


def test_a_worker_refuses_a_namespace_replayed_for_another_partition_count(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=40, days=120, seed=8), path)
    lines = [x for x in path.read_bytes().splitlines() if x.strip()]
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    # the replay ran with another SEGSTREAM_TOPIC_PARTITIONS than the workers'
    asyncio.run(replay_file(settings.model_copy(update={"topic_partitions": 4}), path, "rebuilt", tmp_path))
    before = dump_namespace(settings, "rebuilt")

    async def scenario() -> None:
        await produce_like_the_file(settings, lines)
        client = async_client(settings.redis_url)
        try:
            async with worker_runtime(settings) as runtime:
                task = asyncio.create_task(runtime.worker.run())
                try:
                    main = settings.model_copy(update={"namespace": "main"})
                    await until(caught_up(main, end_offsets(settings)), task)
                    await promote(client, settings.key_prefix, "rebuilt")
                    with pytest.raises(DefinitionsMismatch, match="built for 4 partitions"):
                        await asyncio.wait_for(task, 30)
                finally:
                    runtime.worker.stop()
        finally:
            await client.aclose()

    asyncio.run(scenario())
    assert dump_namespace(settings, "rebuilt") == before, "nothing written into it"

    async def restart() -> None:  # a supervisor restarting the worker meets the same rule at start-up
        async with worker_runtime(settings):
            raise AssertionError("a worker started on a namespace built for another partition count")

    with pytest.raises(DefinitionsMismatch, match="SEGSTREAM_TOPIC_PARTITIONS is 2"):
        asyncio.run(restart())
    assert dump_namespace(settings, "rebuilt") == before


def test_promote_refuses_a_namespace_built_for_another_partition_count(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    env: dict[str, str],
) -> None:
    """Promoted, every worker following the pointer would exit 3 at once: an outage the promote can see
    coming, so it refuses (exit 3) and the pointer stays where it was."""
    from streams.store.connection import sync_client
    from streams.store.namespaces import pointer_key
    from tests.integration.test_cli_failures import failed, segstream

    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=20, days=60, seed=8), path)
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=4)
    asyncio.run(replay_file(settings, path, "rebuilt", tmp_path))
    refused = segstream(["promote", "rebuilt"], env, SEGSTREAM_TOPIC_PARTITIONS="2")
    failed(refused, 3, "built for 4 partitions", "SEGSTREAM_TOPIC_PARTITIONS is 2")
    client = sync_client(settings.redis_url)
    try:
        assert client.get(pointer_key(settings.key_prefix)) is None
    finally:
        client.close()
    assert segstream(["promote", "rebuilt"], env, SEGSTREAM_TOPIC_PARTITIONS="4").returncode == 0
