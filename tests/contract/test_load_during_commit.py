"""A batch's states may be loaded while the previous batch's commit is in flight: Redis can answer the load
before the commit lands, and our client can still handle the commit's reply first. The standing check must
judge the stored commit number against what was ours when the load was sent, not when its reply was read
(it took the partition for one Redis had rewound and re-claimed it: 158 times in 25 s at 10k events/s)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite
from streams.store.redis_store import RedisStateStore
from streams.store.round_trips import RoundTrips
from tests.contract.test_state_store import run
from tests.services import Services

pytestmark = pytest.mark.integration


def test_a_load_answered_before_an_inflight_commit_landed_is_not_taken_for_a_rewind(
    services: Services, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body() -> None:
        r = async_client(services.redis_url)
        ks = KeySpace(redis_prefix.rstrip(":"), "ns", "events")
        try:
            store = RedisStateStore(r, ks)
            claim = await store.claim(0)
            await store.commit(claim, 1, None, [CustomerWrite("c1", {"n": "1"})])
            answered, release = asyncio.Event(), asyncio.Event()
            original = RoundTrips._pipeline

            async def held(self: RoundTrips, calls: Any, raise_on_error: bool = False) -> list[Any]:
                """The load's reply has arrived (Redis answered it) but is handed over only on `release`; the
                commit's round trip after it (streams/store/round_trips.py, as the load's) is not held."""
                result: list[Any] = await original(self, calls, raise_on_error)
                if not answered.is_set():
                    answered.set()
                    await release.wait()
                return result

            monkeypatch.setattr(RoundTrips, "_pipeline", held)
            load = asyncio.create_task(store.load(0, ["c2"], claim))
            await answered.wait()  # the load saw commit 1 as the last one stored
            await store.commit(claim, 2, None, [CustomerWrite("c1", {"n": "2"})])  # lands; reply read first
            release.set()
            assert await load == {}  # before the fix: Rewound("stored commit 1 is before our last one (2)")
            assert await store.load(0, ["c1"], claim) == {"c1": {"n": "2"}}  # and the next check still holds
        finally:
            await r.aclose()

    run(body())
