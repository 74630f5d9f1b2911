"""Changes over a period (issue 16, item 3): who entered and who left a segment, from the transitions topic,
equal the transitions of the period, exactly. A scripted history runs through the real worker on real Kafka
and Redis in phases; between phases the worker is stopped (everything it published is committed) and the
instant is noted. Then, for each period:
- entered / left equal the difference of the segment's members at its two ends (read from Redis), plus, in
  both, a customer erased during the period and in the segment again at its end, and
- every row is the net of the transitions the topic holds with a timestamp in the period (read here by hand),
with a republished copy of transitions (as after a crash) counted once, an erasure listed as `left` to none,
a customer that entered and left within the period absent, one erased and back listed `left` to none and then
`entered`, cursors that chain without gap or overlap (CLI
`--cursor-file`, API `X-Segstream-Next-Cursor`), and a period retention cut refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from streams.bootstrap import keyspace
from streams.devstack.certs import make_certs
from streams.read.changes import Change, ChangesError, changes
from streams.settings import Settings
from streams.store.connection import sync_client
from streams.store.due_index import overdue
from streams.store.partitioning import partition_for
from tests.integration.api_server import serve
from tests.integration.test_worker_history import ev, purchase
from tests.integration.worker_harness import (
    applied_offsets,
    customer_key,
    make_settings,
    produce,
    read_topic,
    run_worker_until,
    stored_customers,
)
from tests.services import Services

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
GRID, SEGMENT = "lifecycle", "new"  # `new` for 30 days after the first purchase


def ticks(at: datetime, tag: str) -> list[bytes]:
    """A web visit in each of the 2 partitions: moves both event-time watermarks (replay mode) to `at`."""
    names = [f"tick-{tag}-{n}" for n in range(100)]
    ids = [next(cid for cid in names if partition_for(cid, 2) == p) for p in (0, 1)]
    return [ev(f"{cid}-v", "web_visit", cid, at, page="/") for cid in ids]


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


PHASES: list[list[bytes]] = [
    # 1: a1..a6 and g1 buy for the first time: new
    [*(purchase(f"a{i}-o1", f"a{i}", day(i / 4)) for i in range(1, 7)), purchase("g1-o1", "g1", day(2))],
    # 2: b1, b2 enter; a1 is erased (leaves to none); d1 enters and, 30 days on, leaves (no net change);
    #    the watermark at day 35 moves a2..a6 (first purchase days 0.5-1.5) on to `active`; g1 is erased and
    #    comes back (a new customer under the same id): new again at the end
    [
        ev("g1-x", "customer_erased", "g1", day(3)),
        purchase("g1-o2", "g1", day(10)),
        purchase("b1-o1", "b1", day(10)),
        purchase("b2-o1", "b2", day(10)),
        ev("a1-x", "customer_erased", "a1", day(3)),
        purchase("d1-o1", "d1", day(3)),
        *ticks(day(35), "2"),
    ],
    # 3: e1 enters and leaves; e2 enters; b1, b2 age out at day 40
    [purchase("e1-o1", "e1", day(36)), *ticks(day(70), "3"), purchase("e2-o1", "e2", day(69))],
    # 4: f1 enters (the sync after the cursor file's)
    [purchase("f1-o1", "f1", day(71))],
]


def members(settings: Settings) -> set[str]:
    return {cid for cid, h in stored_customers(settings).items() if h.get(GRID) == SEGMENT}


def settled(settings: Settings, total: int) -> Callable[[], bool]:
    """Every event applied, and no customer due at or before its partition's watermark (swept)."""
    keys = keyspace(settings)

    def done() -> bool:
        if sum((o if o is not None else -1) + 1 for o in applied_offsets(settings).values()) != total:
            return False
        client = sync_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
        try:
            for p in range(settings.topic_partitions):
                mark = client.hget(keys.partition_meta(p), "watermark")
                if mark is not None and overdue(client, keys, p, int(mark)) > 0:
                    return False
            return True
        finally:
            client.close()

    return done


def run_phase(settings: Settings, lines: list[bytes], total: int) -> datetime:
    """Feed the phase, run the worker until it settled, stop it; the instant right after."""

    async def go() -> None:
        await produce(settings, lines, customer_key)
        await run_worker_until(settings, settled(settings, total))

    asyncio.run(go())
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    return moment


def diff(before: set[str], after: set[str], back: frozenset[str] = frozenset()) -> dict[str, set[str]]:
    """`back`: customers erased during the period and members again at its end (`left`, then `entered`)."""
    return {"entered": (after - before) | back, "left": (before - after) | back}


def by_change(found: list[Change]) -> dict[str, set[str]]:
    return {kind: {c.customer_id for c in found if c.change == kind} for kind in ("entered", "left")}


def from_topic(records: list[Any], start: datetime, end: datetime | None) -> dict[tuple[str, str], Change]:
    """The period's net per customer, straight from the topic's records: the transitions first published
    with a timestamp in [start, end) (an id seen earlier is a copy, not a move of the period)."""
    low, high = start.timestamp() * 1000, (end.timestamp() * 1000 if end else float("inf"))
    seen: set[str] = set()
    moves: dict[str, list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        data = orjson.loads(record.value)["data"]
        if data["id"] in seen:
            continue
        seen.add(data["id"])
        if not low <= record.timestamp < high or data["grid"] != GRID:
            continue
        if SEGMENT in (data["from_segment"], data["to_segment"]) or erasure(data):
            moves.setdefault(data["customer_id"], []).append(data)
    out: dict[tuple[str, str], Change] = {}
    for cid, seq in moves.items():
        was, now = seq[0]["from_segment"] == SEGMENT, seq[-1]["to_segment"] == SEGMENT
        erasures = [d for d in seq if erasure(d)]
        rows = []  # an erasure of a customer the CRM holds always reaches it, whatever came after
        if was and erasures:
            rows = [("left", erasures[-1])] + ([("entered", seq[-1])] if now else [])
        elif was != now:
            rows = [("entered" if now else "left", seq[-1])]
        for kind, d in rows:
            at = d["effective_at"].replace("+00:00", "Z")
            out[(cid, kind)] = Change(cid, kind, d["from_segment"], d["to_segment"], at, d["id"])
    return out


def erasure(data: dict[str, Any]) -> bool:
    return data["to_segment"] is None and data["why"].get("rule") == "customer erased"


async def republish(settings: Settings, copies: list[Any]) -> int:
    """Copies of transition records, same key, value and partition: what a worker that crashed between
    publish and commit, or a stale one, leaves on the topic."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for r in copies:
            topic = settings.transitions_topic
            await producer.send_and_wait(topic, r.value, key=r.key, partition=r.partition)
    finally:
        await producer.stop()
    return len(copies)


def entry_of(records: list[Any], customer: str) -> list[Any]:
    """The record of the customer's (first) entry into the segment."""
    found = [
        r
        for r in records
        if (d := orjson.loads(r.value)["data"])["customer_id"] == customer
        and (d["grid"], d["to_segment"]) == (GRID, SEGMENT)
    ]
    return found[:1]


def copies_in_period(records: list[Any], since: datetime) -> list[Any]:
    """b1's transitions of the period again, in order (a crash's republication), then d1's entry into the
    segment once more after its exit (a late stale copy: only its id tells it is not a new move)."""
    low = since.timestamp() * 1000
    again = [r for r in records if r.timestamp >= low and r.key.decode() == "b1"]
    return again + entry_of(records, "d1")


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "export", GRID, SEGMENT, *args],
        env=settings.as_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_changes_equal_the_transitions_of_the_period(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    snapshots: list[set[str]] = [set()]
    instants: list[datetime] = [datetime.now(UTC)]
    total = 0
    for index, lines in enumerate(PHASES[:3]):
        if index == 1:  # a crash at t1: a2's entry published in period 1 is republished in period 2
            records = asyncio.run(read_topic(settings, settings.transitions_topic))
            assert asyncio.run(republish(settings, entry_of(records, "a2"))) == 1
        total += len(lines)
        instants.append(run_phase(settings, lines, total))
        snapshots.append(members(settings))
        if index == 1:  # inside period 2: copies of b1's moves, and a late copy of d1's entry
            records = asyncio.run(read_topic(settings, settings.transitions_topic))
            assert asyncio.run(republish(settings, copies_in_period(records, instants[1]))) >= 3
            time.sleep(0.05)
            instants[-1] = datetime.now(UTC)
            time.sleep(0.05)
    _, t1, t2, _ = instants
    records = asyncio.run(read_topic(settings, settings.transitions_topic))

    # period 2 (t1..t2): the scripted moves, the members' difference, and the topic's net, all equal
    found, span = asyncio.run(changes(settings, GRID, SEGMENT, since=t1, until=t2))
    assert "g1" in snapshots[1] & snapshots[2]  # a member at both ends: only its erasure tells
    assert by_change(found) == diff(snapshots[1], snapshots[2], back=frozenset({"g1"}))
    assert by_change(found) == {
        "entered": {"b1", "b2", "g1"},
        "left": {"a1", "a2", "a3", "a4", "a5", "a6", "g1"},
    }
    assert {(c.customer_id, c.change): c for c in found} == from_topic(records, t1, t2)
    erased = next(c for c in found if c.customer_id == "a1")
    assert (erased.from_segment, erased.to_segment) == ("new", None)
    assert [(c.change, c.from_segment, c.to_segment) for c in found if c.customer_id == "g1"] == [
        ("left", "new", None),  # first: applied in order, the rows leave the new g1 in
        ("entered", None, "new"),
    ]
    assert next(c for c in found if c.customer_id == "a2").to_segment == "active"
    assert "d1" not in {c.customer_id for c in found}  # entered and left within the period
    # without the lookback, the copy of a2's entry (original in period 1) would hide a2's exit
    blind = asyncio.run(changes(settings, GRID, SEGMENT, since=t1, until=t2, lookback=0))[0]
    assert [c for c in found if c not in blind] == [c for c in found if c.customer_id == "a2"]

    # the cursor of period 2 chains into period 3 exactly (same as from the date t2, up to now)
    after, rest = asyncio.run(changes(settings, GRID, SEGMENT, cursor=span.cursor()))
    assert after == asyncio.run(changes(settings, GRID, SEGMENT, since=t2))[0]
    assert by_change(after) == diff(snapshots[2], snapshots[3])
    assert by_change(after) == {"entered": {"e2"}, "left": {"b1", "b2", "g1"}}  # g1's comeback ages out
    assert {(c.customer_id, c.change): c for c in after} == from_topic(records, t2, None)
    whole = asyncio.run(changes(settings, GRID, SEGMENT, since=t1))[0]
    assert by_change(whole) == diff(snapshots[1], snapshots[3])

    # CLI incremental sync: the first run from a date, the next from the cursor file, then nothing new
    cursor_file = tmp_path / "crm.cursor"
    first = cli(settings, "--cursor-file", str(cursor_file), "--since", t1.isoformat())
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == "customer_id,change,from,to,at,transition_id"
    # the first sync of a cursor file (after a full export) gives end states: every customer that moved in
    # or out, as upsert / delete, right whatever the export saw (tests/integration/test_export_first_sync...)
    states = asyncio.run(changes(settings, GRID, SEGMENT, since=t1, after_export=True))[0]
    first_rows = [line.split(",")[:2] for line in first.stdout.splitlines()[1:]]
    assert first_rows == [[c.customer_id, c.change] for c in states]
    assert {c.customer_id for c in whole} <= {cid for cid, _ in first_rows}, "every net move is among them"
    upserted = {cid for cid, change in first_rows if change == "entered"}
    assert (snapshots[1] - {cid for cid, _ in first_rows}) | upserted == snapshots[3]
    saved = cursor_file.read_text().strip()  # the offsets, and the tag of the namespace's build
    assert saved.partition("@")[0] == rest.cursor() and len(saved.partition("@")[2]) == 8
    assert f"next cursor: {saved}" in first.stderr
    total += len(PHASES[3])
    run_phase(settings, PHASES[3], total)
    second = cli(settings, "--cursor-file", str(cursor_file), "--format", "jsonl")
    assert second.returncode == 0, second.stderr
    rows = [orjson.loads(line) for line in second.stdout.splitlines()]
    assert [(r["customer_id"], r["change"], r["from"], r["to"]) for r in rows] == [
        ("f1", "entered", None, "new")
    ]
    third = cli(settings, "--cursor-file", str(cursor_file), "--format", "jsonl")
    assert third.returncode == 0 and third.stdout == ""

    # the API answers period 2 the same, with the next cursor in a header
    with serve(settings, make_certs(tmp_path / "tls")) as api:
        import urllib.parse
        import urllib.request

        query = urllib.parse.urlencode({"since": t1.isoformat(), "until": t2.isoformat(), "format": "jsonl"})
        request = urllib.request.Request(
            f"{api.base}/grids/{GRID}/segments/{SEGMENT}/changes?{query}", headers=api.auth("members")
        )
        with urllib.request.urlopen(request, context=api.ssl, timeout=30) as resp:
            assert resp.headers["X-Segstream-Next-Cursor"].partition("@")[0] == span.cursor()
            assert resp.headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
            assert [orjson.loads(line) for line in resp.read().splitlines()] == [c.as_dict() for c in found]
        query = urllib.parse.urlencode({"since": t1.isoformat(), "after_export": "true", "format": "jsonl"})
        request = urllib.request.Request(
            f"{api.base}/grids/{GRID}/segments/{SEGMENT}/changes?{query}", headers=api.auth("members")
        )
        with urllib.request.urlopen(request, context=api.ssl, timeout=30) as resp:  # as the CLI's first sync
            got = [orjson.loads(line) for line in resp.read().splitlines()]
            now = asyncio.run(changes(settings, GRID, SEGMENT, since=t1, after_export=True))[0]
            assert [[r["customer_id"], r["change"]] for r in got] == [[c.customer_id, c.change] for c in now]
            assert [r for r in got if r["customer_id"] != "f1"] == [c.as_dict() for c in states]

    # retention: once the topic lost records of the period, the period is refused, never answered short
    p = next(c.partition for c in records if orjson.loads(c.value)["data"]["customer_id"] == "e2")
    asyncio.run(delete_records(settings, p, span.ends[p] + 1))
    refused = cli(settings, "--since", t1.isoformat())
    assert refused.returncode == 2 and "no longer holds everything since" in refused.stderr
    try:
        asyncio.run(changes(settings, GRID, SEGMENT, cursor=f"{p}:0,{1 - p}:0"))
    except ChangesError as exc:
        assert "retention" in str(exc)
    else:
        raise AssertionError("a cursor before the topic's start was accepted")


async def delete_records(settings: Settings, partition: int, before: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(settings.transitions_topic, partition)
        await admin.delete_records({tp: RecordsToDelete(before)})
    finally:
        await admin.close()
