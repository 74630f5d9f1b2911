"""The definitions page: the versions served and stored, who a candidate file would move (a bounded sample).

Why a sample: `segstream definitions diff` reads every customer, which at a million takes longer than an HTTP
request may (SEGSTREAM_API_REQUEST_TIMEOUT_S). The preview re-segments at most `limit` stored customers,
partition by partition in SCAN order, as `diff` does (`resegment` at the customer's own clock; the read side
does not import `streams/admin`, docs/architecture.md, so the few lines are here), and stops early
when half the request timeout has passed; it says how many it read out of how many: the full answer stays
`segstream definitions diff`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

from segmentation import CustomerState, Definitions, DefinitionsError, resegment
from segmentation.kpi_tracking import segments_of as every_segment
from segmentation.safe_yaml import load_bounded
from streams.read.reader import SegmentReader
from streams.store.keys import KeySpace
from streams.store.redis_store import RedisStateStore
from streams.store.replies import text as _text
from streams.store.stored_state import is_tombstone, stored_state

DEFAULT_LIMIT = 20_000
MAX_CHARACTERS = 65_536  # of the candidate text: at most 256 KiB of UTF-8, the definitions file limit
YIELD_EVERY = 50
EXAMPLES = 5  # customer ids shown per (grid, from, to) move: who would move


READ_BATCH = 500


def segments_of(state: CustomerState) -> dict[str, str]:
    """grid -> segment ('-': none) for every grid the state carries, audiences as `audience:<name>`, as
    `definitions diff` compares them: the clv grid only once the customer has a clv segment (it exists only
    under definitions with a clv section). A list of grids of its own here missed category and promotion."""
    segments = every_segment(state).items()
    return {grid: segment or "-" for grid, segment in segments if segment or grid != "clv"}


async def stored_rows(
    reader: SegmentReader, keys: KeySpace, partition: int
) -> AsyncIterator[list[tuple[str, dict[str, str]]]]:
    """The partition's customers as (id, stored mapping), in batches (SCAN + pipelined HGETALL)."""
    store = RedisStateStore(reader.client, keys)
    batch: list[str] = []
    async for customer_id in store.customer_ids(partition):
        batch.append(customer_id)
        if len(batch) >= READ_BATCH:
            yield _live(await store.load(partition, batch))
            batch = []
    if batch:
        yield _live(await store.load(partition, batch))


def _live(rows: dict[str, dict[str, str]]) -> list[tuple[str, dict[str, str]]]:
    """Without a customer erased since the scan (`load` answers its tombstone)."""
    return [(cid, row) for cid, row in rows.items() if not is_tombstone(row)]


async def total_customers(reader: SegmentReader) -> int:
    kpis = await reader.segment_kpis("lifecycle")
    return sum(k.customers for k in kpis.values())


async def definitions_info(reader: SegmentReader) -> dict[str, Any]:
    keys = await reader.keyspace()
    stored = await reader.client.hget(keys.definitions(), "version")
    defs = reader.definitions
    return {
        "namespace": keys.namespace,
        "served_version": defs.version,
        "stored_version": _text(stored) if stored else None,
        "currency": defs.currency,
        "grids": {grid: list(segments) for grid, segments in reader.grids.items()},
        # the grid pairs whose crossing is kept (`GET /crosstab/{a}/{b}`, either way round): the page offers
        # these and says "not kept" for any other, never zeros
        "crosstabs": [list(pair) for pair in defs.kpis.crosstabs],
        "customers": await total_customers(reader),
    }


async def preview(reader: SegmentReader, text: str, limit: int | None) -> dict[str, Any]:
    """Moves per grid for at most `limit` customers under the candidate `text` (YAML). Text that is not a
    YAML mapping raises DefinitionsError (a 400: not a definitions file at all); a mapping that is not valid
    definitions is an answer (`valid: false` and the one-line reason), as `definitions diff` would say."""
    document = load_bounded(text, "candidate")
    if not isinstance(document, Mapping):
        raise DefinitionsError("candidate: expected a YAML mapping at the top level")
    try:
        new = Definitions.from_mapping(document)
    except DefinitionsError as exc:
        return {"valid": False, "error": str(exc), "current_version": reader.definitions.version}
    cap = limit or DEFAULT_LIMIT
    budget_ends = time.monotonic() + reader.settings.api_request_timeout_s / 2
    keys = await reader.keyspace()
    cells: Counter[tuple[str, str, str]] = Counter()
    examined = already_current = 0
    examples: dict[tuple[str, str, str], list[str]] = {}
    for p in range(reader.settings.topic_partitions):
        if examined >= cap:
            break
        async for rows in stored_rows(reader, keys, p):
            for n, (customer_id, row) in enumerate(rows[: cap - examined]):
                if n % YIELD_EVERY == 0:  # CPU-bound: let the API's other requests through meanwhile
                    await asyncio.sleep(0)
                    if time.monotonic() > budget_ends:
                        break
                state = stored_state(row, keys.namespace)
                examined += 1
                already_current += state.definitions_version == new.version
                after = state if state.clock is None else resegment(state, new, at=state.clock).state
                before, later = segments_of(state), segments_of(after)
                for grid in before.keys() | later.keys():
                    cell = (grid, before.get(grid, "-"), later.get(grid, "-"))
                    if cell[1] != cell[2]:
                        cells[cell] += 1
                        if len(examples.setdefault(cell, [])) < EXAMPLES:
                            examples[cell].append(customer_id)
            if examined >= cap or time.monotonic() > budget_ends:
                break
        if time.monotonic() > budget_ends:
            break
    grids: dict[str, list[dict[str, Any]]] = {}
    for (grid, old, now), n in sorted(cells.items()):
        grids.setdefault(grid, []).append(
            {"from": old, "to": now, "customers": n, "examples": examples.get((grid, old, now), [])}
        )
    total = await total_customers(reader)
    return {
        "valid": True,
        "current_version": reader.definitions.version,
        "candidate_version": new.version,
        "examined": examined,
        "total": total,
        "complete": examined >= total,
        "already_current": already_current,
        "moved": {grid: sum(c["customers"] for c in cells) for grid, cells in grids.items()},
        "grids": grids,
    }
