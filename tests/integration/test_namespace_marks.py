"""`promote --allow-incomplete`'s stamp on a building mark, on the real Redis: what it keeps, and a mark a
replay set after the promote looked at the namespace, left as that replay wrote it."""

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
            a, b = b'{"replay": "orders.jsonl", "pid": 7}', b"replay of orders.jsonl since 10:00"
            await client.set(building_key(prefix, "a"), a)
            await client.set(building_key(prefix, "b"), b)
            stamped = await accept(client, prefix, "a", a) is not None
            stamped = stamped and await accept(client, prefix, "b", b) is not None
            first = await client.get(building_key(prefix, "a")) or b"null"
            again = await accept(client, prefix, "a", first)  # stamped already: nothing stamped again
            return (
                stamped,
                orjson.loads(first),
                orjson.loads(await client.get(building_key(prefix, "b")) or b"null"),
                again is None and await client.get(building_key(prefix, "a")) == first,
                await accept(client, prefix, "unmarked", None) is not None,
            )
        finally:
            await client.aclose()

    stamped, a, b, kept, unmarked = asyncio.run(scenario())
    assert stamped and kept and not unmarked
    assert {k: v for k, v in a.items() if k != ACCEPTED} == {"replay": "orders.jsonl", "pid": 7}
    assert b["mark"] == "replay of orders.jsonl since 10:00" and ACCEPTED in b and ACCEPTED in a


def test_a_mark_set_since_the_promote_looked_is_left_as_it_was_set(
    services: Services, redis_prefix: str
) -> None:
    prefix = redis_prefix.rstrip(":")
    key = building_key(prefix, "built")
    theirs = b'{"replay": "other.jsonl", "pid": 9}'

    async def scenario() -> tuple[bytes | None, Any]:
        client = async_client(services.redis_url)
        try:
            seen = b'{"replay": "orders.jsonl", "pid": 7}'  # what the promote looked at
            await client.set(key, theirs)  # a new replay's mark, set since
            return await accept(client, prefix, "built", seen), await client.get(key)
        finally:
            await client.aclose()

    stamped, mark = asyncio.run(scenario())
    assert stamped is None and mark == theirs
