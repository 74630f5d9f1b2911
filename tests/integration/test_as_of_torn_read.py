"""`segment_of(id, grid, as_of=D)` must answer from one stored state of the customer: its history and its
state are fields of one hash. A worker commit between two reads of that hash gave an answer that neither
state holds: the history before the commit (no move to `active` yet) judged by the clock after it (past
`D`), so `known: new` for a day on which both the old state (projected) and the new one (known) say
`active`. The commit is forced between the reads by pausing the reader there (no timing)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from segmentation import Definitions
from streams.read import SegmentReader
from streams.read.history import SegmentAt
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.redis_store import RedisStateStore
from streams.worker.batch import Record
from streams.worker.loop import Worker
from tests.integration.test_worker_history import purchase
from tests.services import Services

pytestmark = pytest.mark.cluster  # make test runs these on a Redis Cluster too

T0 = datetime(2026, 3, 2, tzinfo=UTC)
C = "c-1"
FIRST = [Record("events", 0, 0, C.encode(), purchase("p-1", C, T0))]  # `new` from T0 (new_for_days: 30)
# 40 days on: the purchase moves the customer to `active` at T0 + 30 days first (time), then buys
SECOND = [Record("events", 0, 1, C.encode(), purchase("p-2", C, T0 + timedelta(days=40)))]
AS_OF = T0 + timedelta(days=35)  # after the first state's clock, before the second's


def _settings(services: Services, prefix: str) -> Settings:
    return Settings(
        redis_url=services.redis_url, key_prefix=prefix.rstrip(":"), namespace="main",
        events_topic="events", topic_partitions=1, mode="replay",
    )  # fmt: skip


def test_segment_as_of_is_answered_from_one_state_while_a_worker_commits(
    services: Services, redis_prefix: str
) -> None:
    settings = _settings(services, redis_prefix)

    async def body() -> tuple[SegmentAt, SegmentAt, SegmentAt]:
        client = async_client(settings.redis_url)
        store = RedisStateStore(client, KeySpace(settings.key_prefix, "main", "events"))
        worker = Worker(settings, Definitions.default(), store, None, None)
        await worker.own(0)
        reader = SegmentReader(
            async_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape"),
            settings,
        )
        try:
            await worker.process(0, FIRST)
            before = await reader.segment_of(C, "lifecycle", AS_OF)  # the first state alone
            hgetall = reader.client.hgetall
            calls = 0

            async def commit_after_first_read(*args: Any, **kwargs: Any) -> Any:
                nonlocal calls
                calls += 1
                reply = await hgetall(*args, **kwargs)
                if calls == 1:
                    await worker.process(0, SECOND)  # the worker commits between the reader's reads
                return reply

            reader.client.hgetall = commit_after_first_read  # type: ignore[method-assign]
            torn = await reader.segment_of(C, "lifecycle", AS_OF)
            reader.client.hgetall = hgetall  # type: ignore[method-assign]
            after = await reader.segment_of(C, "lifecycle", AS_OF)  # the second state alone
            return before, torn, after
        finally:
            await reader.aclose()
            await client.aclose()

    before, torn, after = asyncio.run(body())
    assert (before.status, before.segment) == ("projected", "active")
    assert (after.status, after.segment) == ("known", "active")
    # observed before the fix: status 'known', segment 'new' (the old history judged by the new clock)
    assert torn.segment == "active", torn
    assert torn.status in ("projected", "known"), torn
