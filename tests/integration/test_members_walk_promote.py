"""A members walk paged across `segstream promote` (a reader following the active namespace) lists nobody
twice and misses nobody: its cursor's positions are ordinals of the namespace it began in, which name other
customers in another. It listed 3 of 19 members twice and 3 never (review of 7 December 2026); a page asked
with such a cursor is now refused (409), and `iter_members` keeps the namespace it began in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from streams import cli
from streams.read.columns import catalogue, parse_columns
from streams.read.export import Selection, member_rows
from streams.read.members_walk import WalkMoved
from streams.read.reader import SegmentReader
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.keys import KeySpace
from tests.integration.test_human_output import use
from tests.integration.worker_harness import make_settings
from tests.services import Services

pytestmark = pytest.mark.integration
CUSTOMERS = [f"walker-{n}" for n in range(19)]


def _log(path: Path, customers: list[str]) -> Path:
    def purchase(n: int, cid: str) -> bytes:
        return orjson.dumps(
            {
                "type": "purchase", "event_id": f"{cid}-1", "customer_id": cid, "schema_version": 1,
                "occurred_at": f"2026-03-01T10:{n:02d}:00Z", "order_id": f"o-{cid}", "amount": "10",
                "currency": "EUR", "channel": "web",
            }
        )  # fmt: skip

    path.write_bytes(b"\n".join(purchase(n, cid) for n, cid in enumerate(customers)) + b"\n")
    return path


def _stack(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    namespace: str | None = None,
) -> Settings:
    """Settings of 2 partitions in the environment, as the CLI reads them; following the active namespace
    unless `namespace` pins one."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    use(settings, monkeypatch)
    monkeypatch.delenv("SEGSTREAM_NAMESPACE", raising=False)
    if namespace is not None:
        monkeypatch.setenv("SEGSTREAM_NAMESPACE", namespace)
    return settings


def _build(tmp_path: Path, namespace: str, order: list[str], *flags: str) -> None:
    """`order`'s purchases replayed into `namespace` (each customer `new`; ordinals in that order)."""
    log = _log(tmp_path / f"{namespace}.jsonl", order)
    out = str(tmp_path / namespace)
    replay = ["replay", str(log), "--namespace", namespace, "--output-dir", out, "--no-progress", *flags]
    assert cli.main(replay) == 0


def test_a_walk_across_a_promote_is_refused_or_kept_in_its_namespace(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _stack(services, topic_name, redis_prefix, monkeypatch)
    # the same customers, each `new`, replayed in two orders: each partition's ordinals in another order
    _build(tmp_path, "blue", CUSTOMERS)
    _build(tmp_path, "green", CUSTOMERS[::-1])
    assert cli.main(["promote", "blue"]) == 0

    async def walk() -> tuple[list[str], bool]:
        reader = await SegmentReader.connect(Settings(), namespace_ttl_s=0.0)
        try:
            first = await reader.members_page("lifecycle", "new", None, 3)  # a page of blue
            walked = []
            async for member in reader.iter_members("lifecycle", "new", 3):
                walked.append(member)
                if len(walked) == 3:  # promoted in the middle of the walk
                    assert await asyncio.to_thread(cli.main, ["promote", "green"]) == 0
            try:
                await reader.members_page("lifecycle", "new", first.next_cursor, 3)  # in green now
            except WalkMoved:
                return walked, True
            return walked, False
        finally:
            await reader.aclose()

    walked, refused = asyncio.run(walk())
    assert sorted(walked) == sorted(CUSTOMERS)  # each once: the walk stayed in blue
    assert refused


def test_a_walk_whose_namespace_is_dropped_or_built_again_is_refused_not_cut_short(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kept in its namespace, a walk read nothing more once that namespace was dropped (the blue/green
    clean-up after a promote): 3 of 19 members, no error; and a namespace built again under its name gave
    the cursor's positions to other customers (second review of 7 December 2026)."""
    _stack(services, topic_name, redis_prefix, monkeypatch)
    _build(tmp_path, "blue", CUSTOMERS)
    _build(tmp_path, "green", CUSTOMERS[::-1])
    assert cli.main(["promote", "blue"]) == 0

    async def dropped_meanwhile() -> tuple[int, bool]:
        reader = await SegmentReader.connect(Settings(), namespace_ttl_s=0.0)
        walked = 0
        try:
            async for _ in reader.iter_members("lifecycle", "new", 3):
                walked += 1
                if walked == 3:
                    assert await asyncio.to_thread(cli.main, ["promote", "green"]) == 0
                    assert await asyncio.to_thread(cli.main, ["drop", "blue"]) == 0
        except WalkMoved:
            return walked, True
        finally:
            await reader.aclose()
        return walked, False

    walked, refused = asyncio.run(dropped_meanwhile())
    assert refused and walked < len(CUSTOMERS)

    _build(tmp_path, "red", CUSTOMERS)

    async def rebuilt_meanwhile() -> bool:
        reader = await SegmentReader.connect(Settings(namespace="red"), namespace_ttl_s=0.0)
        try:
            first = await reader.members_page("lifecycle", "new", None, 3)
            await asyncio.to_thread(_build, tmp_path, "red", CUSTOMERS[::-1], "--force")
            try:
                await reader.members_page("lifecycle", "new", first.next_cursor, 3)
            except WalkMoved:
                return True
            return False
        finally:
            await reader.aclose()

    assert asyncio.run(rebuilt_meanwhile())


def test_a_full_export_whose_namespace_is_dropped_meanwhile_stops_not_cut_short(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The export's own walk (`export.member_rows`) kept its keys and read on: a drop after a promote gave
    an export short of members, exit 0 (third review of 7 December 2026)."""
    _stack(services, topic_name, redis_prefix, monkeypatch)
    _build(tmp_path, "blue", CUSTOMERS)
    _build(tmp_path, "green", CUSTOMERS)
    assert cli.main(["promote", "blue"]) == 0

    async def export() -> tuple[int, bool]:
        reader = await SegmentReader.connect(Settings(), namespace_ttl_s=0.0)
        (keys, _, standing), listed = await reader.checked(), 0
        try:
            selection = Selection("lifecycle", "new", parse_columns(None, catalogue(reader.grids), False))
            async for chunk in member_rows(
                reader.client, keys, range(2), selection, chunk=2, standing=standing
            ):
                listed += len(chunk)
                if listed >= 2:
                    assert await asyncio.to_thread(cli.main, ["promote", "green"]) == 0
                    assert await asyncio.to_thread(cli.main, ["drop", "blue"]) == 0
        except WalkMoved:
            return listed, True
        finally:
            await reader.aclose()
        return listed, False

    listed, refused = asyncio.run(export())
    assert refused and listed < len(CUSTOMERS)


def test_a_namespace_no_worker_or_replay_has_recorded_yet_is_walked(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No definitions record (a replay that stopped before its end, then promoted with --allow-incomplete)
    read as "dropped": every walk and export of it was refused (fourth review of 7 December 2026)."""
    settings = _stack(services, topic_name, redis_prefix, monkeypatch, namespace="bare")
    _build(tmp_path, "bare", CUSTOMERS)
    client = sync_client(settings.redis_url)
    try:
        client.delete(KeySpace(settings.key_prefix, "bare", settings.events_topic).definitions())
    finally:
        client.close()

    async def walk() -> list[str]:
        reader = await SegmentReader.connect(Settings(), namespace_ttl_s=0.0)
        try:
            return [member async for member in reader.iter_members("lifecycle", "new", 3)]
        finally:
            await reader.aclose()

    assert sorted(asyncio.run(walk())) == sorted(CUSTOMERS)
