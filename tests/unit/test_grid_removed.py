"""A definitions version without one of the audiences: the customer's next event leaves that grid
(`audience:<name> -> None`). That is not an erasure: its history stays (with the exit added) and its KPI
marker goes on, so a later purchase in the same retention period is not counted as retained again."""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

import orjson
import yaml

from segmentation import Definitions
from streams.settings import Settings
from streams.store.history_format import FIELD, decode
from streams.store.port import InMemoryStateStore
from streams.worker.batch import BatchResult, Record
from streams.worker.loop import Worker
from tests.unit.seg_helpers import definitions_with

BUY = {"amount": "40.00", "currency": "EUR", "channel": "web"}


def _record(n: int, kind: str, day: int, **fields: Any) -> Record:
    body = {"event_id": f"e{n}", "type": kind, "customer_id": "c1", "schema_version": 1}
    body |= {"occurred_at": f"2026-01-{day:02d}T00:00:00+00:00", **fields}
    return Record("events", 0, n, b"c1", orjson.dumps(body))


def _run(later: Definitions) -> tuple[list[Any], list[Any], int]:
    """Two purchases under the default definitions, then a visit and a purchase under `later`: the history
    entries after the purchases and after the visit, and the lifecycle's `retained` count."""

    async def go() -> tuple[list[Any], list[Any], int]:
        store = InMemoryStateStore()
        settings = Settings(mode="replay", topic_partitions=1)

        async def keep(result: BatchResult) -> None:
            return None

        first = Worker(settings, Definitions.default(), store, None, None)
        first._publish = keep  # type: ignore[method-assign]
        await first.own(0)
        await first.process(0, [_record(0, "purchase", 2, order_id="o0", **BUY)])
        await first.process(0, [_record(1, "purchase", 3, order_id="o1", **BUY)])
        before = decode(store._p(0).customers["c1"][FIELD])[0]
        second = Worker(settings, later, store, None, None)
        second._publish = keep  # type: ignore[method-assign]
        await second.own(0)
        await second.process(0, [_record(2, "web_visit", 4)])
        after = decode(store._p(0).customers["c1"][FIELD])[0]
        await second.process(0, [_record(3, "purchase", 5, order_id="o3", **BUY)])
        daily = (await store.read_indexes(0)).daily
        retained = sum(v for k, v in daily.get("lifecycle", {}).items() if ":retained:" in k)
        return before, after, retained

    return asyncio.run(go())


def test_an_audience_removed_by_the_definitions_is_left_not_erased() -> None:
    raw = yaml.safe_load(resources.files("segmentation").joinpath("definitions.yaml").read_text())
    without = {k: v for k, v in raw["audiences"].items() if k != "win_back"}
    kept_before, _, kept_retained = _run(definitions_with(version="same-audiences"))
    before, after, retained = _run(definitions_with(audiences=without, version="no-win-back"))
    assert before == kept_before and after[: len(before)] == before  # nothing of the history is lost
    assert [(e.grid, e.to_segment) for e in after[len(before) :]] == [("audience:win_back", None)]
    assert retained == kept_retained
