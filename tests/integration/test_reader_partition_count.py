"""The read side finds a customer in `partition_for(id, SEGSTREAM_TOPIC_PARTITIONS)` and sums segment counts
over partitions 0..count-1. An API, export or `customer` command run with another count than the namespace
was built for (the default 4 against workers of 2 or 12) answered without a word: customers stored in
another partition were "unknown" (HTTP 404 to personalisation) and sizes and KPIs summed part of the
partitions. The namespace records its count: a reader with another one refuses it (StoredFormatError: HTTP
409, exit 3), naming both (found in review, 6 December 2026)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.read.reader import SegmentReader
from streams.sample import generator as sample
from streams.store.connection import async_client
from streams.store.partitioning import partition_for
from streams.store.replies import TEXT_OPTIONS
from streams.store.stored_state import StoredFormatError
from tests.integration.replay_helpers import replay_file
from tests.integration.worker_harness import make_settings, stored_customers
from tests.services import Services


def test_a_reader_refuses_a_namespace_built_for_another_partition_count(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    sample.write_jsonl(sample.SampleSpec(customers=40, days=120, seed=8), path)
    built = make_settings(services, topic_name, redis_prefix, topic_partitions=4, namespace="rebuilt")
    asyncio.run(replay_file(built, path, "rebuilt", tmp_path))
    moved = [cid for cid in stored_customers(built) if partition_for(cid, 4) != partition_for(cid, 2)]
    assert moved, "some customers are in another partition under 2 partitions than under 4"

    async def read(settings_partitions: int) -> object:
        settings = built.model_copy(update={"topic_partitions": settings_partitions})
        reader = SegmentReader(async_client(settings.redis_url, **TEXT_OPTIONS), settings)
        try:
            return await reader.get_customer(moved[0])
        finally:
            await reader.aclose()

    assert asyncio.run(read(4)) is not None, "found with the namespace's count"
    with pytest.raises(StoredFormatError, match="built for 4 partitions and SEGSTREAM_TOPIC_PARTITIONS is 2"):
        asyncio.run(read(2))  # was: None, an unknown customer
