"""A Redis connection torn down under a command is waited out like any lost connection. On a Redis Cluster
failover redis-py disconnects a node's connections while a pipeline of ours still holds one, and the write
then fails with AttributeError ('NoneType' object has no attribute 'writelines'), not ConnectionError: a
worker took it for a bug of its own and exited (CI, test_redis_failover). Here the teardown is forced at
the await just before the write, on the worker's own load and commit paths."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from segmentation.state import CustomerState
from segmentation.state_mapping import state_to_mapping
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite, WriteBatch
from streams.store.redis_store import RedisStateStore
from streams.worker.fenced_commit import commit_batch
from streams.worker.ownership import Owned
from streams.worker.retry import retry, torn_connection
from streams.worker.standing import starting_states
from tests.contract.test_state_store import run
from tests.services import Services

pytestmark = pytest.mark.integration


@contextmanager
def torn_at_next_write(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The next command's connection is disconnected at its health check (the await before redis-py writes
    on it), as a concurrent teardown would; yields how many were torn."""
    original = AbstractConnection.check_health
    torn: list[int] = []

    async def tearing(self: AbstractConnection) -> None:
        if not torn:
            torn.append(1)
            await self.disconnect()
            return
        await original(self)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(AbstractConnection, "check_health", tearing)
    yield torn
    monkeypatch.setattr(AbstractConnection, "check_health", original)


def with_store(services: Services, prefix: str, body: Callable[[RedisStateStore], Awaitable[None]]) -> None:
    async def main() -> None:
        r = async_client(services.redis_url)
        try:
            await body(RedisStateStore(r, KeySpace(prefix.rstrip(":"), "ns", "events")))
        finally:
            await r.aclose()

    run(main())


def test_redis_py_raises_attribute_error_on_a_torn_connection_and_we_know_it(
    services: Services, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shape this guards against: if redis-py ever raises ConnectionError here instead, fine, but then
    this test says the workaround can go."""

    async def body(store: RedisStateStore) -> None:
        claim = await store.claim(0)
        with torn_at_next_write(monkeypatch) as torn, pytest.raises(AttributeError) as raised:
            await store.load(0, ["c1"], claim)
        assert torn == [1]
        assert torn_connection(raised.value)

    with_store(services, redis_prefix, body)


def test_the_load_before_a_batch_is_retried_over_a_torn_connection(
    services: Services, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(store: RedisStateStore) -> None:
        claim = await store.claim(0)
        stored = CustomerState.new("c1")
        await store.commit(claim, 1, None, [CustomerWrite("c1", state_to_mapping(stored))])
        retried: list[str] = []
        with torn_at_next_write(monkeypatch) as torn:
            states = await starting_states(store, Owned(claim, 1, None), ["c1"], retried.append, 0.05)
        assert torn == [1]
        assert retried == ["load states"]
        assert not isinstance(states, str)
        assert states["c1"][0] == stored

    with_store(services, redis_prefix, body)


def test_a_commit_is_retried_over_a_torn_connection_and_lands_once(
    services: Services, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(store: RedisStateStore) -> None:
        claim = await store.claim(0)
        await store.commit(claim, 1, None, [CustomerWrite("c1", {"n": "1"})])
        retried: list[str] = []
        batch = WriteBatch([CustomerWrite("c1", {"n": "2"})])
        with torn_at_next_write(monkeypatch) as torn:
            outcome = await commit_batch(store, Owned(claim, 1, None), batch, 2, None, retried.append, 0.05)
        assert (torn, retried, outcome) == ([1], ["commit state"], "committed")
        assert await store.read_meta(0) == (2, None)
        assert await store.load(0, ["c1"], claim) == {"c1": {"n": "2"}}

    with_store(services, redis_prefix, body)


def test_our_own_attribute_and_type_errors_are_not_retried() -> None:
    """Only an error raised inside redis-py's connection module is a torn connection: a bug of ours still
    stops the worker at once, never spins in the retry loop."""
    calls: list[int] = []

    async def buggy() -> Any:
        calls.append(1)
        return None.writelines  # type: ignore[attr-defined]

    async def main() -> None:
        with pytest.raises(AttributeError):
            await retry(buggy, "ours", lambda what: None, 0.05)

    run(main())
    assert calls == [1]
    assert not torn_connection(TypeError("'NoneType' object is not callable"))


def test_a_setting_redis_py_refuses_is_not_taken_for_a_torn_connection(tmp_path: Any) -> None:
    """redis-py raises a TypeError in its connection module for an unknown URL option too: that one must
    stop the worker with its message, not be retried forever."""
    client = Redis.from_url(f"unix://{tmp_path}/none.sock?socket_timout=5")  # sic: socket_timeout

    async def main() -> None:
        with pytest.raises(TypeError, match="socket_timout"):
            await retry(lambda: client.get("x"), "read", lambda what: None, 0.05)

    run(main())
