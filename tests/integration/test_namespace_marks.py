"""`promote --allow-incomplete`'s stamp on a building mark, on the real Redis: what it keeps, and a mark a
replay set between the stamp's read and its write, left as that replay wrote it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from streams.store.connection import async_client
from streams.store.keys import building_key
from streams.store.namespace_marks import ACCEPTED, accept
from tests.services import Services


def test_the_stamp_keeps_the_mark_s_fields_and_wraps_an_earlier_release_s(
    services: Services, redis_prefix: str
) -> None:
    prefix = redis_prefix.rstrip(":")

    async def scenario() -> tuple[bool, Any, Any, bool, Any]:
        client = async_client(services.redis_url)
        try:
            await client.set(building_key(prefix, "a"), b'{"replay": "orders.jsonl", "pid": 7}')
            await client.set(building_key(prefix, "b"), b"replay of orders.jsonl since 10:00")
            stamped = await accept(client, prefix, "a") and await accept(client, prefix, "b")
            first = orjson.loads(await client.get(building_key(prefix, "a")) or b"null")
            again = await accept(client, prefix, "a")  # stamped already: kept as it is
            return (
                stamped,
                first,
                orjson.loads(await client.get(building_key(prefix, "b")) or b"null"),
                again and await client.get(building_key(prefix, "a")) == orjson.dumps(first),
                await accept(client, prefix, "unmarked"),
            )
        finally:
            await client.aclose()

    stamped, a, b, kept, unmarked = asyncio.run(scenario())
    assert stamped and kept and not unmarked
    assert {k: v for k, v in a.items() if k != ACCEPTED} == {"replay": "orders.jsonl", "pid": 7}
    assert b["mark"] == "replay of orders.jsonl since 10:00" and ACCEPTED in b and ACCEPTED in a


def test_a_mark_set_between_the_stamp_s_read_and_its_write_is_left_as_it_was_set(
    services: Services, redis_prefix: str
) -> None:
    prefix = redis_prefix.rstrip(":")
    key = building_key(prefix, "built")
    theirs = b'{"replay": "other.jsonl", "pid": 9}'

    async def scenario() -> tuple[bool, Any]:
        client, other = async_client(services.redis_url), async_client(services.redis_url)
        read = client.get

        async def read_then_replay_marks(*args: Any, **kwargs: Any) -> Any:
            value = await read(*args, **kwargs)
            await other.set(key, theirs)  # a new replay's mark, right after the stamp's read
            return value

        try:
            await client.set(key, b'{"replay": "orders.jsonl", "pid": 7}')
            client.get = read_then_replay_marks  # type: ignore[method-assign]
            stamped = await accept(client, prefix, "built")
            return stamped, await read(key)
        finally:
            await client.aclose()
            await other.aclose()

    stamped, mark = asyncio.run(scenario())
    assert not stamped and mark == theirs
