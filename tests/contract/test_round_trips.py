"""Commands asked in one event-loop iteration share one round trip (streams/store/round_trips.py), and each
caller gets exactly what it would have got alone: its own replies and errors, nothing sent once it gave up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from streams.store.connection import async_client, async_pooled_client, is_cluster
from streams.store.keys import KeySpace
from streams.store.port import CustomerWrite
from streams.store.redis_store import RedisStateStore
from streams.store.round_trips import RoundTrips
from tests.contract.test_state_store import run
from tests.services import Services

pytestmark = pytest.mark.integration


def single_server(services: Services) -> None:
    """A Redis Cluster client shares no round trip (round_trips.py): what these tests check is not there."""
    if is_cluster(services.redis_url):
        pytest.skip("round trips are shared on a single Redis server only")


def test_a_polls_partitions_share_one_round_trip_and_keep_their_own_replies(
    services: Services, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    single_server(services)
    sent: list[int] = []  # commands per round trip that went to Redis
    original = RoundTrips._once

    async def counted(self: RoundTrips, conn: Connection, commands: list[Any]) -> list[Any]:
        sent.append(len(commands))
        return await original(self, conn, commands)

    monkeypatch.setattr(RoundTrips, "_once", counted)

    async def body() -> None:
        r = async_client(services.redis_url)
        trips = RoundTrips(r)
        k = f"{redis_prefix}k"
        try:
            await r.set(f"{k}:text", "x")
            callers = [
                trips.send([("SET", f"{k}:{n}", 10 + n), ("EXISTS", f"{k}:{n}"), ("GET", f"{k}:{n}")])
                for n in range(4)
            ]
            refused = trips.send([("HGET", f"{k}:text", "f"), ("SET", f"{k}:after", "1")])
            *replies, mine = await asyncio.gather(*callers, refused)
            assert replies == [[True, 1, str(10 + n).encode()] for n in range(4)]
            assert isinstance(mine[0], ResponseError) and "WRONGTYPE" in str(mine[0])
            assert mine[1] is True and await r.get(f"{k}:after") == b"1"  # a pipeline, not a transaction
            assert sent == [14]  # one round trip for the five callers
            assert await trips.send([("GET", f"{k}:0")]) == [b"10"]  # a later iteration: its own
        finally:
            await r.aclose()

    run(body())


def test_a_caller_cancelled_before_the_round_trip_sends_nothing(
    services: Services, redis_prefix: str
) -> None:
    single_server(services)

    async def body() -> None:
        r = async_client(services.redis_url)
        trips = RoundTrips(r)
        k = f"{redis_prefix}k"
        try:
            gone = asyncio.create_task(trips.send([("SET", f"{k}:gone", "1")]))
            await asyncio.sleep(0)  # it asked; the round trip goes out in the next iteration
            gone.cancel()
            assert await trips.send([("SET", f"{k}:kept", "1")]) == [True]
            assert gone.cancelled()
            assert await r.exists(f"{k}:gone", f"{k}:kept") == 1
        finally:
            await r.aclose()

    run(body())


def test_an_interrupted_round_trip_fails_its_callers_with_an_unknown_outcome(
    services: Services, redis_prefix: str
) -> None:
    """Cancelling the round trip's own task (the loop shutting down, say) must not hand its callers a
    cancellation they did not ask for (a batch pipeline takes a cancelled step for one it abandoned): each
    gets a connection error, whose outcome it does not know and retries (a commit: 'DUP' if it landed)."""
    single_server(services)

    async def body() -> None:
        r = async_client(services.redis_url)
        trips = RoundTrips(r)
        try:
            callers = [asyncio.create_task(trips.send([("GET", f"{redis_prefix}{n}")])) for n in range(2)]
            await asyncio.sleep(0)  # both asked; the round trip's task starts in the next iteration
            await asyncio.sleep(0)
            for task in list(trips._sending):
                task.cancel()
            results = await asyncio.gather(*callers, return_exceptions=True)
            assert [type(x) for x in results] == [RedisConnectionError, RedisConnectionError]
            assert await trips.send([("GET", f"{redis_prefix}0")]) == [None]  # and the next one works
        finally:
            await r.aclose()

    run(body())


def test_a_connection_left_half_read_is_closed_before_the_pool_gets_it_back(
    services: Services, redis_prefix: str
) -> None:
    """A single server's round trips take a connection of the pool and give it back (the next one gets the
    same); one whose round trip stopped before every reply was read (here a reply's callback fails) is closed
    first, never handed to the next round trip, which would read the earlier replies as its own."""
    single_server(services)

    async def body() -> None:
        r = async_client(services.redis_url)
        trips = RoundTrips(r)
        k = f"{redis_prefix}k"
        try:
            first = await trips.send([("CLIENT", "ID"), ("SET", f"{k}:a", "a"), ("SET", f"{k}:b", "b")])
            assert (await trips.send([("CLIENT", "ID")]))[0] == first[0]  # the pool's same connection

            def failing(response: Any, **kwargs: Any) -> Any:
                raise ZeroDivisionError("a reply's callback failed")

            r.response_callbacks["ECHO"] = failing  # fails once its reply is read
            with pytest.raises(ZeroDivisionError):
                await trips.send([("ECHO", "x"), ("GET", f"{k}:a")])  # the GET's reply is left unread
            del r.response_callbacks["ECHO"]
            again = await trips.send([("GET", f"{k}:b"), ("CLIENT", "ID")])
            assert again[0] == b"b"  # its own reply, not the GET's left behind
            assert again[1] != first[0]  # on a new connection
        finally:
            await r.aclose()

    run(body())


def test_round_trips_hold_no_connection_between_them(services: Services, redis_prefix: str) -> None:
    """A store made per request (the dashboard makes one per partition and request) holds no connection of
    the client's pool once its round trip is over: on a pool of two, one store after another all get one."""
    single_server(services)

    async def body() -> None:
        r = async_pooled_client(services.redis_url, 2, 1.0)
        try:
            for _ in range(6):
                assert await RoundTrips(r).send([("PING",)]) == [True]
        finally:
            await r.aclose()

    run(body())


def test_a_failed_connection_fails_every_caller(services: Services, redis_prefix: str) -> None:
    async def body() -> None:
        r = async_client("redis://127.0.0.1:1/0", socket_connect_timeout=1)  # nothing listens there
        trips = RoundTrips(r)
        try:
            results = await asyncio.gather(
                trips.send([("GET", "a")]), trips.send([("GET", "b")]), return_exceptions=True
            )
            assert [type(x) for x in results] == [RedisConnectionError, RedisConnectionError]
        finally:
            await r.aclose()

    run(body())


def test_the_commit_script_is_loaded_again_when_redis_lost_it(services: Services, redis_prefix: str) -> None:
    """A restarted (or flushed) Redis holds no scripts: the commit's EVALSHA answers NOSCRIPT, and the commit
    goes through redis-py's script object, which loads it: committed once, as if it had been there."""

    async def body() -> None:
        r = async_client(services.redis_url)
        store = RedisStateStore(r, KeySpace(redis_prefix.rstrip(":"), "ns", "events"))
        try:
            claim = await store.claim(0)
            await store.commit(claim, 1, None, [CustomerWrite("c1", {"n": "1"})])
            await r.script_flush()
            await store.commit(claim, 2, None, [CustomerWrite("c1", {"n": "2"})])
            assert await store.load(0, ["c1"], claim) == {"c1": {"n": "2"}}
            assert await store.read_meta(0) == (2, None)
        finally:
            await r.aclose()

    run(body())
