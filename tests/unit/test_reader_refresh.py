"""The reader checks its namespace once for all the requests that need it at once, and a failed check is
every one's failure: it answered ~99 % of requests from the namespace checked before while a failing check
ran (a promote to a namespace it cannot read), and at start-up ran the failing check once per waiting
request, one after another (review of 7 December 2026)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.read import reader as reader_module
from streams.read.reader import SegmentReader
from streams.settings import Settings
from streams.store.keys import KeySpace
from streams.store.stored_state import StoredFormatError


class _Namespaces:
    """The active namespace and whether it can be read: what `check_readable` would find in Redis."""

    def __init__(self) -> None:
        self.active, self.unreadable, self.checks = "a", set[str](), 0


def _reader(monkeypatch: pytest.MonkeyPatch, world: _Namespaces) -> SegmentReader:
    async def check_readable(client: Any, keys: KeySpace, partitions: int) -> tuple[str, str]:
        world.checks += 1
        await asyncio.sleep(0.02)  # a round trip
        if keys.namespace in world.unreadable:
            raise StoredFormatError(f"namespace {keys.namespace!r} cannot be read")
        return keys.namespace, keys.namespace

    async def namespace_keys(self: SegmentReader) -> KeySpace:
        return KeySpace("p", world.active, "events")

    monkeypatch.setattr(reader_module, "check_readable", check_readable)
    monkeypatch.setattr(SegmentReader, "namespace_keys", namespace_keys)
    return SegmentReader(None, Settings(), namespace_ttl_s=0.05)  # type: ignore[arg-type]


async def _burst(reader: SegmentReader, n: int) -> list[str]:
    async def one() -> str:
        try:
            return (await reader.keyspace()).namespace
        except StoredFormatError:
            return "refused"

    return list(await asyncio.gather(*(one() for _ in range(n))))


def test_one_check_for_a_burst_and_its_failure_is_everyones(monkeypatch: pytest.MonkeyPatch) -> None:
    world = _Namespaces()
    reader = _reader(monkeypatch, world)

    async def scenario() -> tuple[list[str], int, list[str], list[str]]:
        first = await _burst(reader, 20)
        checks = world.checks
        world.active, world.unreadable = "b", {"b"}  # promoted to a namespace this reader cannot read
        await asyncio.sleep(0.06)  # past the ttl
        during = await _burst(reader, 20)
        later = await _burst(reader, 5)
        return first, checks, during, later

    first, checks, during, later = asyncio.run(scenario())
    assert first == ["a"] * 20 and checks == 1
    assert during == ["refused"] * 20 and later == ["refused"] * 5  # never "a", the namespace before
