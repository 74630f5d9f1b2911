"""Day counters kept per ISO week (#13): every answer over a date range (KPIs, flows, the dashboard's sizes
and transition matrix) equals a reference computed from the published transitions and the day counters summed
as one hash per grid (the layout before the split), for ranges crossing week, month and year boundaries; and
a namespace of the earlier layout is refused by readers and by the worker, never answered with zeros."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import orjson
import pytest

from segmentation import Definitions
from segmentation.kpi_figures import segment_figures
from segmentation.state_mapping import is_segment
from streams.admin.definitions_change import apply
from streams.bootstrap import keyspace
from streams.read import SegmentReader
from streams.read.dashboard.aggregates import NONE, segment_moves, segment_sizes, sizes_from_flows
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import async_client
from streams.store.keys import KeySpace
from streams.store.redis_store import RedisStateStore
from streams.store.stored_state import StoredFormatError
from streams.store.weeks import FORMAT, FORMAT_FIELD, stored_field
from tests.integration.worker_harness import (
    applied_offsets,
    customer_views,
    make_settings,
    produce,
    read_topic,
    run_worker_until,
)
from tests.services import Services

D = date.fromisoformat
# the sample runs 2026-01-01 (a Thursday, ISO week 2026-W01 from Monday 2025-12-29) for 240 days
RANGES: list[tuple[date | None, date | None]] = [
    (None, None),
    (None, D("2026-03-31")),  # up to a month end
    (D("2026-01-31"), D("2026-02-01")),  # across a month end (a Saturday and a Sunday)
    (D("2026-02-28"), D("2026-03-02")),  # across a month end and a week boundary (Sunday 1 March)
    (D("2026-04-05"), D("2026-04-06")),  # Sunday to Monday: two weeks, one day each
    (D("2026-03-01"), D("2026-05-31")),  # whole months: their retention periods listed
    (D("2026-03-04"), D("2026-04-29")),  # from and to mid-week
    (D("2026-05-10"), D("2026-05-10")),  # one day
    (D("2026-05-10"), D("2026-05-01")),  # from after to: empty
    (D("2025-12-29"), D("2026-01-04")),  # the first ISO week, across the year end, before the first event
    (D("2026-06-15"), None),
    (D("2026-07-01"), D("2027-01-10")),  # beyond the last day, across a year end
]


def _all_applied(settings: Settings, total: int) -> Callable[[], bool]:
    return lambda: sum((o if o is not None else -1) + 1 for o in applied_offsets(settings).values()) == total


def _figures(answer: Any) -> dict[str, Any]:
    """The numbers of a `GridKpis` answer, as `segment_figures` names them."""
    fields = ("customers_at_start", "customers_at_end", "entrants", "exits", "orders", "converted", "churned")
    return {
        "segments": {
            s: {**{f: getattr(k, f) for f in fields}, "revenue_minor": k.revenue_minor}
            for s, k in answer.segments.items()
        },
        "total": {
            "orders": answer.orders,
            "revenue_minor": sum(k.revenue_minor for k in answer.segments.values()),
        },
        "periods": [
            (
                p.period,
                p.first_day.isoformat(),
                p.last_day.isoformat(),
                {
                    s: (c.customers_at_start, c.buyers, c.orders, c.revenue_minor)
                    for s, c in p.segments.items()
                },
            )
            for p in answer.periods
        ],
    }


def _reference_figures(want: dict[str, Any]) -> dict[str, Any]:
    keep = ("customers_at_start", "customers_at_end", "entrants", "exits", "orders", "converted", "churned")
    return {
        "segments": {
            s: {**{f: row[f] for f in keep}, "revenue_minor": row["revenue_minor"]}
            for s, row in want["segments"].items()
        },
        "total": want["total"],
        "periods": [
            (
                p["period"],
                p["from"],
                p["to"],
                {
                    s: (c["customers_at_start"], c["buyers"], c["orders"], c["revenue_minor"])
                    for s, c in p["segments"].items()
                },
            )
            for p in want["periods"]
        ],
    }


def test_answers_over_date_ranges_equal_a_reference_from_the_transitions(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    spec = sample.SampleSpec(customers=150, days=240, seed=13, erasure_share=0.05)
    lines = list(sample.generate(spec))
    definitions = Definitions.default()
    grids = definitions.grid_segments

    async def scenario() -> tuple[list[Any], dict[str, Any]]:
        await produce(settings, lines, lambda line: (sample.recover_customer_id(line) or "").encode() or None)
        await run_worker_until(settings, _all_applied(settings, len(lines)), timeout=120)
        records = await read_topic(settings, settings.transitions_topic)
        client = async_client(settings.redis_url, decode_responses=True, encoding_errors="surrogateescape")
        reader = SegmentReader(client, settings)
        store = RedisStateStore(client, keyspace(settings))
        got: dict[str, Any] = {"kpis": {}, "moves": {}, "sizes": {}}
        try:
            got["snapshots"] = [await store.read_indexes(p) for p in range(settings.topic_partitions)]
            got["flows"] = {g: await reader.segment_flows(g) for g in grids}
            for g in grids:
                for first, last in RANGES:
                    got["kpis"][(g, first, last)] = _figures(await reader.grid_kpis(g, first, last))
                    got["moves"][(g, first, last)] = (await segment_moves(reader, g, first, last)).cells
                    sizes = await segment_sizes(reader, g, first, last)
                    got["sizes"][(g, first, last)] = (sizes.days, sizes.sizes)
            weeks = await client.smembers(keyspace(settings).weeks(0))
            got["week_keys"] = [k async for k in client.scan_iter(match=f"{redis_prefix}*:d:lifecycle:*")]
            got["weeks"] = weeks
        finally:
            await client.aclose()
        return records, got

    records, got = asyncio.run(scenario())
    transitions = list({t["id"]: t for t in (orjson.loads(r.value)["data"] for r in records)}.values())
    days = sorted({t["effective_at"][:10] for t in transitions})
    assert days[0] < "2026-02-01" and days[-1] > "2026-07-01", "the transitions must span the ranges"
    assert len(got["weeks"]) > 20 and got["week_keys"], "counters must be kept in many week keys"

    # reference inputs: flows and moves from the transitions, today's counts from the customer hashes, the
    # KPI counters summed as one hash per grid (what the readers read before the split)
    flows: dict[str, Counter[str]] = defaultdict(Counter)
    moves: dict[str, Counter[tuple[str, str, str]]] = defaultdict(Counter)
    for t in transitions:
        day, grid = t["effective_at"][:10], t["grid"]
        if t["from_segment"]:
            flows[grid][f"{t['from_segment']}:out:{day}"] += 1
        if t["to_segment"]:
            flows[grid][f"{t['to_segment']}:in:{day}"] += 1
        moves[grid][(t["from_segment"] or NONE, t["to_segment"] or NONE, day)] += 1
    customers: dict[str, Counter[str]] = defaultdict(Counter)
    for row in customer_views(settings).values():  # an audience's `not_member` is not stored
        for key, segment in row.items():
            if is_segment(key) and segment:
                customers[key][segment] += 1
    counters: dict[str, Counter[str]] = defaultdict(Counter)
    for snap in got["snapshots"]:
        for grid, fields in snap.daily.items():
            counters[grid].update(fields)
    assert counters["lifecycle"], "KPI counters must be kept"

    unit = definitions.kpis.retention_period
    for grid, segments in grids.items():
        by_day: dict[str, dict[str, dict[str, int]]] = {}
        for name, n in flows[grid].items():
            rest, _, day = name.rpartition(":")
            segment, _, direction = rest.rpartition(":")
            by_day.setdefault(day, {}).setdefault(segment, {"in": 0, "out": 0})[direction] += n
        assert got["flows"][grid] == dict(sorted(by_day.items())), grid
        for first, last in RANGES:
            at = (grid, first, last)
            want = segment_figures(segments, counters[grid], flows[grid], customers[grid], first, last, unit)
            assert got["kpis"][at] == _reference_figures(want), at
            lo, hi = (first or D("0001-01-01")).isoformat(), (last or D("9999-12-31")).isoformat()
            cells: Counter[tuple[str, str]] = Counter()
            for (a, b, day), n in moves[grid].items():
                if lo <= day <= hi:
                    cells[(a, b)] += n
            assert {(a, b): n for a, b, n in got["moves"][at]} == +cells, at
            assert got["sizes"][at] == sizes_from_flows(
                tuple(segments), customers[grid], by_day, first, last
            ), at
    some = got["kpis"][("lifecycle", D("2026-03-01"), D("2026-05-31"))]
    assert len(some["periods"]) == 3 and some["total"]["orders"] > 0
    assert any(n for _, _, n in got["moves"][("rfm", D("2026-02-28"), D("2026-03-02"))])


def _older_namespace(keys: KeySpace, layout: str = "grid") -> list[tuple[str, dict[str, str]]]:
    """What a namespace of an earlier layout holds: a committed partition, all days in one `d:` hash
    (`grid`), or a hash per week with the names in full (`week`, meta `days=week`) or in decimal codes
    (`week-coded`), or the day flows kept in `f:` hashes beside the moves (`grid-named`)."""
    tag = keys.partition_meta(0)[: -len(":meta")]
    meta = {"offset": "41", "watermark": "1767225600000000", "fence": "1", "seq": "3"}
    if layout == "grid-named":
        return [
            (keys.partition_meta(0), meta | {"days": "week-short/grid-named"}),
            (keys.segment_days(0, "lifecycle", "2026-W01"), {stored_field("new:orders", "5"): "3"}),
            (f"{tag}:f:lifecycle:2026-W01", {stored_field("new:in", "5"): "5"}),
            (keys.moves(0, "lifecycle", "2026-W01"), {stored_field("->new", "5"): "5"}),
            (keys.kpis(0, "lifecycle"), {"new:customers": "5"}),
        ]
    if layout == "week-coded":
        return [
            (keys.partition_meta(0), meta | {"days": "week-coded"}),
            (keys.segment_days(0, "lifecycle", "2026-W01"), {"7:0:5": "3"}),
            (f"{tag}:f:lifecycle:2026-W01", {"7:4:5": "5"}),
            (keys.kpis(0, "lifecycle"), {"new:customers": "5"}),
        ]
    if layout == "week":
        return [
            (keys.partition_meta(0), meta | {"days": "week"}),
            (keys.segment_days(0, "lifecycle", "2026-W01"), {"new:orders:5": "3"}),
            (f"{tag}:f:lifecycle:2026-W01", {"new:in:5": "5"}),
            (keys.kpis(0, "lifecycle"), {"new:customers": "5"}),
        ]
    return [
        (keys.partition_meta(0), meta),
        (f"{tag}:d:lifecycle", {"new:orders:2026-01-02": "3"}),
        (f"{tag}:f:lifecycle", {"new:in:2026-01-02": "5"}),
        (keys.kpis(0, "lifecycle"), {"new:customers": "5"}),
    ]


@pytest.mark.parametrize("layout", ["grid", "week", "week-coded", "grid-named"])
@pytest.mark.parametrize("reading", ["grid_kpis", "segment_flows", "segment_moves", "segment_sizes"])
def test_an_older_namespace_is_refused_by_readers_naming_the_fix(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, reading: str, layout: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")

    async def scenario() -> str:
        client = async_client(settings.redis_url, decode_responses=True)
        reader = SegmentReader(client, settings)
        try:
            for key, mapping in _older_namespace(keyspace(settings), layout):
                await client.hset(key, mapping=mapping)  # type: ignore[arg-type]
            calls: dict[str, Callable[[], Awaitable[object]]] = {
                "grid_kpis": lambda: reader.grid_kpis("lifecycle", D("2026-01-01"), D("2026-01-31")),
                "segment_flows": lambda: reader.segment_flows("lifecycle"),
                "segment_moves": lambda: segment_moves(reader, "lifecycle", None, None),
                "segment_sizes": lambda: segment_sizes(reader, "lifecycle", None, None),
            }
            with pytest.raises(StoredFormatError) as refused:
                await calls[reading]()
            return str(refused.value)
        finally:
            await client.aclose()

    message = asyncio.run(scenario())
    assert message == (
        "namespace 'main' keeps its day counters or customer fields in an older format (written by an "
        "earlier segstream): rebuild it with `segstream replay`"
    )


def test_a_worker_refuses_an_older_namespace_and_marks_a_new_one(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    keys = keyspace(settings)
    fresh = KeySpace(keys.prefix, "fresh", keys.topic)

    async def scenario() -> tuple[str, Any, Any, Any]:
        client = async_client(settings.redis_url, decode_responses=True)
        try:
            for key, mapping in _older_namespace(keys):
                await client.hset(key, mapping=mapping)  # type: ignore[arg-type]
            older = RedisStateStore(client, keys)
            claimed = await older.claim(0)
            with pytest.raises(StoredFormatError) as refused:  # what a worker does before each batch
                await older.load(0, ["c1"], claimed)
            store = RedisStateStore(client, fresh)
            claim = await store.claim(0)
            marked = await client.hget(fresh.partition_meta(0), FORMAT_FIELD)
            await store.commit(claim, 0, None, [])
            again = await RedisStateStore(client, fresh).claim(0)  # committed and marked: accepted
            return (
                str(refused.value),
                marked,
                again.offset,
                await client.hget(keys.partition_meta(0), FORMAT_FIELD),
            )
        finally:
            await client.aclose()

    message, marked, offset, older = asyncio.run(scenario())
    assert "keeps its day counters or customer fields in an older format" in message
    assert "segstream replay" in message
    assert (marked, offset, older) == (FORMAT, 0, None)


def test_the_worker_stops_on_an_older_namespace(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    spec = sample.SampleSpec(customers=5, days=5, seed=3)
    lines = list(sample.generate(spec))

    async def scenario() -> None:
        client = async_client(settings.redis_url, decode_responses=True)
        try:
            for p in range(settings.topic_partitions):
                keys = keyspace(settings)
                await client.hset(keys.partition_meta(p), mapping={"offset": "0", "fence": "1", "seq": "1"})
        finally:
            await client.aclose()
        await produce(settings, lines, lambda line: (sample.recover_customer_id(line) or "").encode() or None)
        await run_worker_until(settings, lambda: False, timeout=30)

    with pytest.raises(StoredFormatError, match=r"older format .* rebuild it with `segstream replay`"):
        asyncio.run(scenario())


def test_definitions_apply_refuses_an_older_namespace_before_any_write(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, namespace="main")
    keys = keyspace(settings)

    async def scenario() -> tuple[str, list[str]]:
        client = async_client(settings.redis_url, decode_responses=True)
        try:
            for key, mapping in _older_namespace(keys):
                await client.hset(key, mapping=mapping)  # type: ignore[arg-type]
            with pytest.raises(StoredFormatError) as refused:
                await apply(client, keys, 1, Definitions.default(), None)
            tag = keys.partition_meta(0)[: -len(":meta")]
            return str(refused.value), sorted([k async for k in client.scan_iter(match=f"{tag}:*")])
        finally:
            await client.aclose()

    message, stored = asyncio.run(scenario())
    assert "keeps its day counters or customer fields in an older format" in message
    assert stored == sorted(key for key, _ in _older_namespace(keys)), "nothing written"
