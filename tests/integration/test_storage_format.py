"""A namespace of storage format 1 (written by an earlier segstream) is refused in one line, no traceback:
the CLI (card, --json, export) exits 3, the HTTP API answers 409, each naming the namespace and the fix."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from segmentation import Definitions
from segmentation.state_codec import FORMAT, nul_free, raw_state
from segmentation.state_mapping import is_segment, state_from_mapping, stored_part
from streams import cli
from streams.admin import definitions_change as change
from streams.read.api import make_app
from streams.read.auth import Authenticator
from streams.read.reader import SegmentReader
from streams.settings import Settings
from streams.store.connection import async_client, sync_client
from streams.store.history_format import COMPRESSED, decode, encode, plain
from streams.store.history_format import FIELD as HISTORY
from streams.store.keys import KeySpace
from streams.store.partitioning import partition_for
from streams.store.replies import TEXT_OPTIONS
from streams.store.stored_state import StoredFormatError
from tests.integration.test_human_output import known_customer_log, use
from tests.integration.worker_harness import customer_key, decoded, make_settings, produce, run_worker_until
from tests.services import Services
from tests.unit.test_kpi_marker import OLDER as OLDER_MARKER

pytestmark = pytest.mark.integration
KNOWN = "known-1"
FIX = "customer hash is in storage format 1, written by an earlier segstream: rebuild the namespace with"


def replayed(
    namespace: str,
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Settings, str]:
    """The known customer's log replayed into `namespace`; the settings and the customer's key."""
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2)
    use(settings, monkeypatch)
    log = tmp_path / "events.jsonl"
    known_customer_log(log)
    replay = ["replay", str(log), "--namespace", namespace, "--output-dir", str(tmp_path), "--no-progress"]
    assert cli.main(replay) == 0
    keys = KeySpace(settings.key_prefix, namespace, settings.events_topic)
    return settings, keys.customer(partition_for(KNOWN, 2), KNOWN)


async def served(settings: Settings, path: str, text: bool = False) -> tuple[int, object]:
    """Status and JSON body (`text`: the body as text) of GET `path` from the HTTP API over the namespace in
    force."""
    reader = SegmentReader(async_client(settings.redis_url, **TEXT_OPTIONS), Settings())
    runner = web.AppRunner(make_app(reader, Authenticator.disabled()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            return resp.status, await resp.text() if text else orjson.loads(await resp.read())
    finally:
        await runner.cleanup()
        await reader.aclose()


def test_a_format_1_namespace_is_refused_in_one_line_by_the_cli_and_the_api(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, key = replayed("old", services, topic_name, redis_prefix, tmp_path, monkeypatch)
    client = sync_client(settings.redis_url, **TEXT_OPTIONS)
    try:  # the customer as a segstream of storage format 1 left it: every field readable, no `state`
        row = decoded(client.hgetall(key))  # type: ignore[arg-type]
        client.hdel(key, "state")
        client.hset(key, mapping={k: v.encode("utf-8", "surrogateescape") for k, v in row.items()})
    finally:
        client.close()
    monkeypatch.setenv("SEGSTREAM_NAMESPACE", "old")
    capsys.readouterr()
    for command in (
        ["customer", KNOWN],
        ["customer", KNOWN, "--json"],
        ["export", "lifecycle", row["segment:lifecycle"]],
    ):
        assert cli.main(command) == 3, command
        out, err = capsys.readouterr()
        assert err == f"segstream {command[0]}: namespace 'old': {FIX} `segstream replay`\n"
        assert "Traceback" not in out + err

    assert asyncio.run(served(settings, f"/customers/{KNOWN}")) == (
        409,
        {"error": f"namespace 'old': {FIX} `segstream replay`", "status": 409},
    )


def test_a_namespace_whose_segments_are_named_segment_grid_is_refused_in_one_line(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Up to 4 December 2026 a segment was the hash field `segment:<grid>` and the partitions said `days` =
    `week-short`: read as now, every segment would be None and every export empty. The card, the export,
    the KPIs and the API refuse it instead (exit 3 / 409), naming the fix."""
    settings, key = replayed("grids", services, topic_name, redis_prefix, tmp_path, monkeypatch)
    keys = KeySpace(settings.key_prefix, "grids", settings.events_topic)
    client = sync_client(settings.redis_url, **TEXT_OPTIONS)
    try:  # the namespace as bc51f5e left it
        row: dict[str, str] = client.hgetall(key)  # type: ignore[assignment]
        grids = [k for k in row if is_segment(k)]
        segment = row["lifecycle"]
        client.hdel(key, *grids)
        client.hset(key, mapping={"segment:" + k: row[k] for k in grids})
        for p in range(2):
            client.hset(keys.partition_meta(p), "days", "week-short")
    finally:
        client.close()
    monkeypatch.setenv("SEGSTREAM_NAMESPACE", "grids")
    capsys.readouterr()
    older = "namespace 'grids' keeps its day counters or customer fields in an older format"
    # the namespace's format is checked before any answer (the customer's own words are not reached)
    for command, line in (
        (["customer", KNOWN], older),
        (["export", "lifecycle", segment], older),
        (["kpis", "--grid", "lifecycle"], older),
    ):
        assert cli.main(command) == 3, command
        out, err = capsys.readouterr()
        assert err.startswith(f"segstream {command[0]}: {line}"), err
        assert "segstream replay" in err and "Traceback" not in out + err
    status, body = asyncio.run(served(settings, f"/customers/{KNOWN}"))
    assert status == 409 and older in str(body), body
    status, body = asyncio.run(served(settings, f"/customers/{KNOWN}/segments/lifecycle"))
    assert status == 409 and older in str(body), body
    status, body = asyncio.run(served(settings, f"/grids/lifecycle/segments/{segment}/export?format=jsonl"))
    assert status == 409 and older in str(body), body  # before the first byte, not a cut body


def test_an_unreadable_history_field_is_refused_in_one_line_by_the_cli_and_the_api(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A `history` field of another format (a newer segstream, or damage) is exit 3 / HTTP 409, not a 500."""
    settings, key = replayed("hist", services, topic_name, redis_prefix, tmp_path, monkeypatch)
    client = sync_client(settings.redis_url, **TEXT_OPTIONS)
    try:
        client.hset(key, "history", "~not a history")
    finally:
        client.close()
    monkeypatch.setenv("SEGSTREAM_NAMESPACE", "hist")
    capsys.readouterr()
    assert cli.main(["customer", KNOWN]) == 3
    out, err = capsys.readouterr()
    assert err.startswith(f"segstream customer: namespace 'hist', customer '{KNOWN}': history")
    assert err.endswith("rebuild the namespace with `segstream replay`\n") and err.count("\n") == 1
    assert "Traceback" not in out + err

    status, _ = asyncio.run(served(settings, f"/customers/{KNOWN}/history"))
    assert status == 409


def _older_marker(row: dict[str, str]) -> tuple[str, bytes]:
    """The `_kpi` marker is coded since storage format 2's second marker version: a marker named (8232a7b
    and before)."""
    return "_kpi", OLDER_MARKER.encode("utf-8", "surrogateescape")


def _format_4(row: dict[str, str]) -> tuple[str, bytes]:
    """Format 4 kept the event-id window inside the compressed state, as text; its value began with 0x04."""
    return "state", b"\x04" + row["state"].encode("utf-8", "surrogateescape")[1:]


@pytest.mark.parametrize(
    ("older", "refusal"),
    [
        (
            _older_marker,
            "customer KPI marker '_kpi' was written by an earlier segstream: "
            "rebuild the namespace with `segstream replay`",
        ),
        (
            _format_4,
            "customer hash is in storage format 4 (its packed state, and before format 4 its readable fields,"
            " are laid out otherwise), written by an earlier segstream: rebuild the namespace with"
            " `segstream replay`",
        ),
    ],
    ids=["kpi-marker", "state-format-4"],
)
def test_a_worker_meeting_a_hash_of_an_earlier_segstream_stops_in_one_line_before_writing(
    older: Callable[[dict[str, str]], tuple[str, bytes]],
    refusal: str,
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker continuing a namespace one of whose customers an earlier segstream wrote refuses it before
    applying or writing anything."""
    settings, key = replayed("older", services, topic_name, redis_prefix, tmp_path, monkeypatch)
    settings = settings.model_copy(update={"namespace": "older"})
    client = sync_client(settings.redis_url, **TEXT_OPTIONS)
    try:
        client.hset(key, *older(client.hgetall(key)))  # type: ignore[arg-type]
        before = client.hgetall(key)
        line = orjson.dumps({
            "type": "purchase", "event_id": "late-1", "customer_id": KNOWN, "schema_version": 1,
            "occurred_at": "2026-03-09T10:00:00Z", "order_id": "o9", "amount": "5.00", "currency": "EUR",
            "channel": "web", "items": [{"sku": "sku-1", "quantity": 1, "unit_price": "5.00"}],
        })  # fmt: skip
        # the replayed lines at the offsets the replay recorded (the malformed one in KNOWN's partition),
        # then one more purchase of KNOWN: the worker resumes after the replay and loads KNOWN for it
        replayed_lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
        asyncio.run(produce(settings, [*replayed_lines, line], lambda b: customer_key(b) or KNOWN.encode()))
        with pytest.raises(StoredFormatError) as refused:
            asyncio.run(run_worker_until(settings, lambda: False, timeout=60))
        assert str(refused.value) == f"namespace 'older': {refusal}"
        assert client.hgetall(key) == before  # nothing applied, nothing written
    finally:
        client.close()


def test_definitions_apply_meeting_a_kpi_marker_of_an_earlier_segstream_writes_nothing(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, key = replayed("kpia", services, topic_name, redis_prefix, tmp_path, monkeypatch)
    keys = KeySpace(settings.key_prefix, "kpia", settings.events_topic)
    client = sync_client(settings.redis_url, **TEXT_OPTIONS)
    try:
        client.hset(key, "_kpi", OLDER_MARKER.encode("utf-8", "surrogateescape"))
        before = snapshot(settings.redis_url, f"{settings.key_prefix}:kpia:*")
        new = dataclasses.replace(Definitions.default(), version="kpi-2")

        async def apply() -> None:
            aclient = async_client(settings.redis_url)
            try:
                await change.apply(aclient, keys, 2, new, None)
            finally:
                await aclient.aclose()

        refusal = r"^namespace 'kpia': customer KPI marker '_kpi' was written by an earlier segstream"
        with pytest.raises(StoredFormatError, match=refusal):
            asyncio.run(apply())
        # no customer, index or counter written (the claim moved the partitions' fences only)
        assert snapshot(settings.redis_url, f"{settings.key_prefix}:kpia:*") == before
    finally:
        client.close()


def snapshot(url: str, match: str) -> dict[bytes, bytes]:
    """DUMP of every key matching `match` but the partitions' meta hashes (fence, owner: moved by a claim)."""
    raw = sync_client(url)
    try:
        return {k: raw.dump(k) for k in raw.scan_iter(match=match) if not k.endswith(b":meta")}  # type: ignore[misc]
    finally:
        raw.close()


def test_a_customer_written_in_the_earlier_forms_reads_the_same_and_a_trimmed_history_says_so(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plain `0x01` history, as 65f8a17 wrote it, gives the API the same answers; a state of format 2
    (uncompressed, with the readable fields of its time) is refused naming the fix; the profile's
    `history_trimmed` follows the stored history (the readers' view has none)."""
    settings, key = replayed("forms", services, topic_name, redis_prefix, tmp_path, monkeypatch)
    monkeypatch.setenv("SEGSTREAM_NAMESPACE", "forms")
    paths = (f"/customers/{KNOWN}", f"/customers/{KNOWN}/history")
    now = [asyncio.run(served(settings, path)) for path in paths]
    assert now[0][0] == now[1][0] == 200
    client = sync_client(settings.redis_url, **TEXT_OPTIONS)
    try:
        row: dict[str, str] = client.hgetall(key)  # type: ignore[assignment]
        assert row["state"][0] == chr(FORMAT) and row[HISTORY][0] == COMPRESSED
        client.hset(key, HISTORY, plain(row[HISTORY]).encode())
        assert [asyncio.run(served(settings, path)) for path in paths] == now
        earlier = bytes([2]) + nul_free(raw_state(stored_part(state_from_mapping(row))))
        client.hset(key, "state", earlier)
        status, refused = asyncio.run(served(settings, paths[0]))
        assert status == 409 and "storage format 2" in str(refused) and "segstream replay" in str(refused)
        client.hset(key, "state", row["state"].encode("utf-8", "surrogateescape"))
        entries, trimmed = decode(row[HISTORY])
        assert not trimmed and now[0][1]["history_trimmed"] is False  # type: ignore[index]
        client.hset(key, HISTORY, encode(entries, True).encode("utf-8", "surrogateescape"))
    finally:
        client.close()
    status, body = asyncio.run(served(settings, paths[0]))
    assert status == 200 and body["history_trimmed"] is True  # type: ignore[index]
