"""A claim that Redis lost (restore, failover) can be handed out again with the same fence number: the two
claims must still be told apart, or the older owner's commit is taken for a duplicate of the newer's."""

from __future__ import annotations

import pytest

from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite, Fenced
from streams.store.redis_store import RedisStateStore
from tests.contract.test_state_store import run
from tests.services import Services

pytestmark = pytest.mark.integration


def test_an_owner_whose_claim_redis_lost_cannot_commit_under_the_same_fence_number(
    services: Services, redis_prefix: str
) -> None:
    async def body() -> None:
        r = async_client(services.redis_url)
        ks = KeySpace(redis_prefix.rstrip(":"), "ns", "events")
        try:
            old, new = RedisStateStore(r, ks), RedisStateStore(r, ks)  # two workers, one Redis
            mine = await old.claim(0)
            for offset in (1, 2, 3):
                await old.commit(mine, offset, None, [CustomerWrite("c1", {"n": str(offset)})])
            await r.delete(ks.partition_meta(0))  # Redis back to before that claim (a restored snapshot)
            theirs = await new.claim(0)
            assert theirs.fence == mine.fence  # the same number, handed out twice
            for offset in (1, 2, 3, 4):
                await new.commit(theirs, offset, None, [CustomerWrite("c1", {"n": f"new {offset}"})])
            with pytest.raises(
                Fenced
            ):  # before: stored seq 4 >= ours, taken as our retry: "DUP", nothing said
                await old.commit(mine, 4, None, [CustomerWrite("c1", {"n": "stale"})])
            with pytest.raises(Fenced):  # and a batch is not even applied to our stale states
                await old.load(0, ["c1"], mine)
            assert await new.load(0, ["c1"], theirs) == {"c1": {"n": "new 4"}}
        finally:
            await r.aclose()

    run(body())
