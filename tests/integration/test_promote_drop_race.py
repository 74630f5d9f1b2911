"""`promote X` racing `drop X` (or a `replay --force` of X) must never leave X active and emptied: readers and
every worker following the pointer would then read a namespace that is gone or half rebuilt. Each guard looked
at the other's key, then wrote its own; between the look and the write the other command ran (found in review,
6 December 2026). The interleavings are forced with a hook at the await between the two."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from streams.store.connection import async_client
from streams.store.namespaces import NamespaceRefused, active_namespace, drop, is_empty, promote
from tests.services import Services

NS = "spring"


async def _fill(client: aioredis.Redis, prefix: str) -> None:
    await client.set(f"{prefix}:{NS}:{{t:0}}:meta", b"x")
    await client.set(f"{prefix}:{NS}:{{t:0}}:c:alice", b"x")


async def _after(prefix: str, url: str, command: str, first_call: Any) -> tuple[str, bool, list[str]]:
    """Run `command` (drop or promote of NS) on a client whose first UNLINK (drop) or SET of the pointer
    (promote) first runs `first_call(other client)`: the active namespace, whether NS is empty, outcomes."""
    client, other = async_client(url), async_client(url)
    outcomes: list[str] = []
    try:
        await _fill(client, prefix)
        name = "unlink" if command == "drop" else "set"
        real = getattr(client, name)
        fired = False

        async def hooked(*args: Any, **kwargs: Any) -> Any:
            nonlocal fired
            if not fired and (name == "unlink" or args[0] == f"{prefix}:namespace:active"):
                fired = True
                try:
                    await first_call(other)
                    outcomes.append("other done")
                except NamespaceRefused as exc:
                    outcomes.append(f"other refused: {exc}")
            return await real(*args, **kwargs)

        setattr(client, name, hooked)
        try:
            if command == "drop":
                await drop(client, prefix, NS)
            else:
                await promote(client, prefix, NS)
            outcomes.append(f"{command} done")
        except NamespaceRefused as exc:
            outcomes.append(f"{command} refused: {exc}")
        setattr(client, name, real)
        return await active_namespace(client, prefix), await is_empty(client, prefix, NS), outcomes
    finally:
        await client.delete(f"{prefix}:namespace:active")
        await client.aclose()
        await other.aclose()


@pytest.mark.parametrize(
    "command", ["drop", "promote"], ids=["promote-between-drop-check-and-unlink", "drop-before-promote-set"]
)
def test_promote_racing_drop_never_leaves_an_emptied_namespace_active(
    services: Services, redis_prefix: str, command: str
) -> None:
    prefix = redis_prefix.rstrip(":")

    async def other(client: aioredis.Redis) -> None:
        if command == "drop":
            await promote(client, prefix, NS)  # between drop's look at the pointer and its first UNLINK
        else:
            await drop(client, prefix, NS)  # between promote's look at NS and its SET of the pointer

    active, empty, outcomes = asyncio.run(_after(prefix, services.redis_url, command, other))
    assert not (active == NS and empty), outcomes
    assert any("refused" in o for o in outcomes), outcomes


def test_promote_racing_a_replay_with_force_is_refused(services: Services, redis_prefix: str) -> None:
    """`replay --force` of NS drops it, then rebuilds it: a promote between its look at the pointer and its
    first UNLINK made NS active while it was emptied and rebuilt."""
    from streams.store.namespaces import prepare_namespace

    prefix = redis_prefix.rstrip(":")

    async def replay_prepared(client: aioredis.Redis) -> None:
        await prepare_namespace(client, prefix, NS, True, b'{"replay": "events.jsonl"}')

    async def promote_first(client: aioredis.Redis) -> None:
        await promote(client, prefix, NS)

    async def run() -> tuple[str, list[str]]:
        client, other = async_client(services.redis_url), async_client(services.redis_url)
        outcomes: list[str] = []
        try:
            await _fill(client, prefix)
            real = client.unlink

            async def hooked(*args: Any) -> Any:
                if not outcomes:
                    try:
                        await promote_first(other)
                        outcomes.append("promote done")
                    except NamespaceRefused as exc:
                        outcomes.append(f"promote refused: {exc}")
                return await real(*args)

            client.unlink = hooked  # type: ignore[method-assign]
            await replay_prepared(client)
            return await active_namespace(client, prefix), outcomes
        finally:
            await client.delete(f"{prefix}:namespace:active")
            await client.aclose()
            await other.aclose()

    active, outcomes = asyncio.run(run())
    assert active != NS and outcomes and "being built" in outcomes[0], outcomes
