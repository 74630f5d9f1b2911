"""Read side on the real worker, Kafka and Redis: indexes equal a recomputation from the hashes, flows equal
the published transitions, history answers `as of`, and the HTTP API serves it all."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from segmentation import Definitions
from segmentation.instants import parse_iso
from segmentation.state_mapping import is_segment, state_from_mapping, view_of
from streams.bootstrap import keyspace
from streams.read import SegmentReader
from streams.read.api import make_app
from streams.read.auth import Authenticator
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.redis_store import RedisStateStore
from tests.integration.test_worker_history import expected, history
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


def _all_applied(settings: Settings, total: int) -> Callable[[], bool]:
    return lambda: sum((o if o is not None else -1) + 1 for o in applied_offsets(settings).values()) == total


def test_indexes_equal_a_recomputation_after_a_randomised_stream(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, history_size=10_000, namespace="main")
    spec = sample.SampleSpec(customers=120, days=240, seed=5, malformed_share=0.03, erasure_share=0.08)
    lines = list(sample.generate(spec))
    definitions = Definitions.default()

    async def scenario() -> tuple[list[Any], dict[str, Any]]:
        await produce(settings, lines, lambda line: (sample.recover_customer_id(line) or "").encode() or None)
        await run_worker_until(settings, _all_applied(settings, len(lines)), timeout=120)
        records = await read_topic(settings, settings.transitions_topic)
        client = async_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
        reader = SegmentReader(client, settings)
        store = RedisStateStore(client, keyspace(settings))
        try:
            got: dict[str, Any] = {
                "snapshots": [await store.read_indexes(p) for p in range(settings.topic_partitions)],
                "kpis": {g: await reader.segment_kpis(g) for g in reader.grids},
                "flows": {g: await reader.segment_flows(g) for g in reader.grids},
                "members": {
                    (g, s): [m async for m in reader.iter_members(g, s, count=7)]
                    for g, segs in reader.grids.items()
                    for s in segs
                },
                "histories": {},
            }
            for cid in {orjson.loads(r.value)["subject"] for r in records}:
                got["histories"][cid] = await reader.history(cid)
        finally:
            await client.aclose()
        return records, got

    records, got = asyncio.run(scenario())
    transitions = list({t["id"]: t for t in (orjson.loads(r.value)["data"] for r in records)}.values())
    assert any(t["cause"] == "time" for t in transitions), "the stream must include time-driven moves"
    assert any(t["to_segment"] is None for t in transitions), "the stream must include erasures"
    # each hash as its view (`view_of`): an audience's `not_member`, absent from the hash, is a segment too
    hashes = {cid: view_of(row, state_from_mapping(row)) for cid, row in stored_customers(settings).items()}
    assert hashes, "customers must be stored"

    # membership and KPIs: recomputed from every customer hash, per partition and in total
    members: dict[tuple[int, str, str], set[str]] = defaultdict(set)
    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    from streams.store.partitioning import partition_for

    for cid, row in hashes.items():
        p = partition_for(cid, settings.topic_partitions)
        for key, segment in row.items():
            if is_segment(key) and segment:  # a grid's segment is stored under the grid's name
                grid = key
                members[(p, grid, segment)].add(cid)
                totals[(grid, segment)].update(
                    customers=1, revenue_minor=int(row["monetary_minor"]), orders=int(row["orders"])
                )
    for p, snap in enumerate(got["snapshots"]):
        assert snap.members == {(g, s): ids for (q, g, s), ids in members.items() if q == p}
        for grid, fields in snap.kpis.items():
            for name, value in fields.items():
                segment, _, metric = name.rpartition(":")
                want = sum(
                    int(row["monetary_minor"] if metric == "revenue_minor" else row[metric])
                    if metric != "customers"
                    else 1
                    for (q, g, s), ids in members.items()
                    if (q, g, s) == (p, grid, segment)
                    for row in (hashes[c] for c in ids)
                )
                assert value == want, (p, grid, name)
    for grid, per_segment in got["kpis"].items():
        for segment, k in per_segment.items():
            figures = totals.get((grid, segment), Counter())
            assert (k.customers, k.revenue_minor, k.orders) == (
                figures["customers"],
                figures["revenue_minor"],
                figures["orders"],
            ), (grid, segment)
    for (grid, segment), ids in got["members"].items():
        assert sorted(ids) == sorted(
            c for (_, g, s), cs in members.items() if (g, s) == (grid, segment) for c in cs
        )
    assert set(got["kpis"]) == set(definitions.grid_segments)

    # day flows: exactly the published transitions
    flows: Counter[tuple[str, str, str, str]] = Counter()
    for t in transitions:
        day = t["effective_at"][:10]
        if t["from_segment"]:
            flows[(t["grid"], day, t["from_segment"], "out")] += 1
        if t["to_segment"]:
            flows[(t["grid"], day, t["to_segment"], "in")] += 1
    seen = Counter(
        {
            (grid, day, segment, d): n
            for grid, days in got["flows"].items()
            for day, segs in days.items()
            for segment, cell in segs.items()
            for d, n in cell.items()
            if n
        }
    )
    assert seen == flows

    # history: the customer's transitions since its last erasure, in order (none for an erased customer)
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    checked = 0
    for r in records:
        event = orjson.loads(r.value)
        by_customer[event["subject"]].append(event["data"])
    for cid, published in by_customer.items():
        unique = list({t["id"]: t for t in published}.values())
        last_erasure = max((i for i, t in enumerate(unique) if t["to_segment"] is None), default=-1)
        since = unique[last_erasure + 1 :]
        h = got["histories"][cid]
        if cid not in hashes:
            assert h is None or h.entries == [], cid
            continue
        assert [e.id for e in h.entries] == [t["id"] for t in since], cid
        assert [(e.grid, e.from_segment, e.to_segment, e.effective_at, e.cause) for e in h.entries] == [
            (t["grid"], t["from_segment"], t["to_segment"], parse_iso(t["effective_at"]), t["cause"])
            for t in since
        ], cid
        assert not h.trimmed
        # why: only on the entry that put the customer in its current segment of a grid, derived from the
        # state as of its clock: for a move made at the clock, the why it was published with
        row, clock = hashes[cid], state_from_mapping(hashes[cid]).clock
        current = {
            e.grid: n
            for n, e in enumerate(h.entries)
            if e.to_segment is not None and e.to_segment == (row.get(e.grid) or None)
        }
        last = {e.grid: n for n, e in enumerate(h.entries)}
        assert set(h.why) == {k for k, v in row.items() if is_segment(k) and v}
        for n, (e, t) in enumerate(zip(h.entries, since, strict=True)):
            if current.get(e.grid) == n == last[e.grid]:
                assert e.why == h.why[e.grid], (cid, e)
                if e.effective_at == clock:
                    sent = {k: v for k, v in t["why"].items() if k not in ("occurred_at", "late")}
                    assert e.why == sent, (cid, e)
                    checked += 1
            else:
                assert e.why == {}, (cid, e)
    assert checked >= 20, "the whys of moves made at the clock must be checked"


@pytest.mark.cluster
def test_as_of_answers_match_the_transitions_and_the_http_api_serves_them(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    lines = history()
    _, want = expected(lines, Definitions.default())

    async def scenario() -> None:
        await produce(settings, lines, customer_key)
        await run_worker_until(settings, _all_applied(settings, len(lines)))
        client = async_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
        reader = SegmentReader(client, settings)
        try:
            for t in want:
                timeline = [u for u in want if u.customer_id == t.customer_id and u.grid == t.grid]
                for moment in (t.effective_at - timedelta(microseconds=1), t.effective_at):
                    before = [u for u in timeline if u.effective_at <= moment]
                    answer = await reader.segment_of(t.customer_id, t.grid, as_of=moment)
                    if before:
                        assert (answer.status, answer.segment) == ("known", before[-1].to_segment)
                        assert answer.transition_id == before[-1].id
                    else:
                        assert (answer.status, answer.segment) == ("not_yet", None)
            now = await reader.segment_of("alice", "lifecycle")
            assert (
                now.status == "current"
                and now.segment
                == [u for u in want if u.customer_id == "alice" and u.grid == "lifecycle"][-1].to_segment
            )
            # every grid, audiences included (a `not_member` answer is not stored: it comes from `state`)
            last = {(u.customer_id, u.grid): u.to_segment for u in want}
            assert "not_member" in last.values()
            for (cid, grid), segment in last.items():
                assert (await reader.segment_of(cid, grid)).segment == segment, (cid, grid)
            await _http_checks(reader, settings)
        finally:
            await client.aclose()

    asyncio.run(scenario())


async def _http_checks(reader: SegmentReader, settings: Settings) -> None:
    runner = web.AppRunner(make_app(reader, Authenticator.disabled()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    await reader.client.hset(
        (await reader.keyspace()).metrics(),
        mapping={"w:h-1:events": 10, "w:h-1:batches": 2, "w:h-1:batch_seconds_sum": "0.5", "lag:0": 3},
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def get(path: str) -> tuple[int, Any]:
                async with http.get(base + path) as resp:
                    body = await resp.read()
                    is_json = resp.content_type == "application/json"
                    return resp.status, (orjson.loads(body) if is_json else body.decode())

            status, body = await get("/customers/alice")
            assert status == 200 and body["customer_id"] == "alice" and body["segments"]["lifecycle"]
            assert body["freshness"]["offset"] and body["freshness"]["definitions_version"]
            assert body["rfm"]["orders"] == 2
            assert (await get("/customers/nobody"))[0] == 404
            assert (await get("/customers/nobody/history"))[0] == 404
            status, body = await get("/customers/alice/history")
            assert status == 200 and body["entries"] and body["trimmed"] is False
            status, body = await get("/customers/alice/segments/lifecycle?as_of=2026-01-05T00:00:00Z")
            assert status == 200 and body["status"] == "not_yet"
            assert (await get("/customers/alice/segments/lifecycle?as_of=yesterday"))[0] == 400
            assert (await get("/customers/alice/segments/nogrid"))[0] == 404
            status, grids = await get("/grids")
            assert status == 200 and "lifecycle" in grids and "rfm" in grids
            status, body = await get("/grids/lifecycle/segments")
            assert status == 200 and sum(k["customers"] for k in body["segments"].values()) == 3
            assert (await get("/grids/nogrid/segments"))[0] == 404
            assert (await get("/grids/lifecycle/flows"))[0] == 200
            # members: pages of one, following the cursor, give every member once
            segment = next(s for s, k in body["segments"].items() if k["customers"] >= 1)
            seen: list[str] = []
            cursor = ""
            for _ in range(100):
                status, page = await get(
                    f"/grids/lifecycle/segments/{segment}/members?count=1&cursor={cursor}"
                )
                assert status == 200
                seen += page["members"]
                if page["next_cursor"] is None:
                    break
                cursor = page["next_cursor"]
            assert len(seen) == body["segments"][segment]["customers"] == len(set(seen))
            for bad in ("count=0", "count=x", "cursor=zz", "cursor=99:0"):
                assert (await get(f"/grids/lifecycle/segments/{segment}/members?{bad}"))[0] == 400
            assert (await get("/grids/lifecycle/segments/nosuch/members"))[0] == 404
            status, body = await get("/health")
            assert status == 200 and body == {"status": "ok", "redis": True, "namespace": "main"}
            status, text = await get("/metrics")
            assert status == 200
            # the in-process worker published its own 10 events; the fake second worker adds 10
            assert 'segstream_events_processed_total{namespace="main"} 20' in text
            assert 'segstream_consumer_lag{namespace="main",partition="0"} 3' in text
            assert "# TYPE segstream_batch_seconds summary" in text
            for line in text.splitlines():
                assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2
            status, spec = await get("/openapi.json")
            assert status == 200 and spec["openapi"].startswith("3.")
            served = {r.resource.canonical for r in runner.app.router.routes() if r.resource is not None}
            assert served == set(spec["paths"])
            assert (await get("/no/such/route"))[0] == 404
    finally:
        await runner.cleanup()
