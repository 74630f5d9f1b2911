"""A worker that retires from a namespace (stops, or follows a promote) folds its counters into the
namespace's retired totals and deletes its fields, on every backend: the metrics hash stays bounded however
often workers restart, and the totals /metrics serves never drop nor count a worker twice, even when it
comes back to the namespace or its fold failed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from streams.store.connection import async_client
from streams.store.counters import Metrics
from streams.store.keys import KeySpace
from streams.store.metrics_hash import prometheus, retired_fields, worker_fields
from streams.store.port import InMemoryStateStore, StateStore
from streams.store.redis_store import RedisStateStore
from streams.store.replies import texts
from streams.worker.progress_report import retire
from tests.services import Services

NOW = 2_000_000_000.0
Row = Callable[[], Coroutine[Any, Any, dict[str, str]]]
Backend = Callable[[], Coroutine[Any, Any, tuple[StateStore, Row]]]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """A store and a reader of its metrics hash as /metrics reads it."""
    if request.param == "memory":

        async def memory() -> tuple[StateStore, Row]:
            store = InMemoryStateStore()

            async def row() -> dict[str, str]:
                return dict(store.metrics)

            return store, row

        return memory
    request.applymarker(pytest.mark.integration)
    services: Services = request.getfixturevalue("services")
    keys = KeySpace(request.getfixturevalue("redis_prefix").rstrip(":"), "ns", "events")

    async def real() -> tuple[StateStore, Row]:
        client = async_client(services.redis_url)
        store = RedisStateStore(client, keys)

        async def row() -> dict[str, str]:
            return texts(await client.hgetall(keys.metrics()))

        return store, row

    return real


def totals(row: dict[str, str]) -> dict[str, float]:
    """The namespace-wide counters /metrics serves (the same exposition of the same hash)."""
    out: dict[str, float] = {}
    for line in prometheus(row, "ns", now=NOW).splitlines():
        if line.startswith("#") or "worker=" in line or "partition=" in line:
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


def events(row: dict[str, str]) -> float:
    return totals(row)['segstream_events_processed_total{namespace="ns"}']


def worker(reporter: str, n: int, retries: int = 0) -> Metrics:
    metrics = Metrics(reporter=reporter)
    metrics.batch(n, n // 10, 1, 0.25, duplicates=2)
    for _ in range(retries):
        metrics.retry("commit state")
    return metrics


def test_a_retired_worker_leaves_its_totals_and_no_field(backend: Backend) -> None:
    async def scenario() -> None:
        store, row = await backend()
        a, b = worker("host-a-1", 100, retries=3), worker("host-b-2", 40)
        await store.publish_metrics(worker_fields(a, 0, 5, "live"))
        await store.publish_metrics(worker_fields(b, 1, 0, "live"))
        before = totals(await row())
        assert events(await row()) == 140
        a.batch(10, 0, 0, 0.5)  # applied after its last report: its fold counts it
        await retire(store, a)
        after = await row()
        assert not [name for name in after if "host-a-1" in name], "every field of the retired id gone"
        assert events(after) == 150
        grown = {k: v for k, v in totals(after).items() if v != before[k]}
        assert set(grown) == {
            'segstream_events_processed_total{namespace="ns"}',
            'segstream_batch_seconds_count{namespace="ns"}',
            'segstream_batch_seconds_sum{namespace="ns"}',
        }, "nothing lost, the retries and the other counters as before"
        # back in the namespace (a promote back): a new id counts from the fold, nothing twice
        a.batch(7, 0, 0, 0.1)
        await store.publish_metrics(worker_fields(a, 0, 0, "live"))
        assert a.reporter != "host-a-1"
        assert events(await row()) == 157
        assert totals(await row())['segstream_retries_total{namespace="ns",operation="commit state"}'] == 3

    asyncio.run(scenario())


def test_restarts_do_not_grow_the_hash_and_totals_are_exact(backend: Backend) -> None:
    async def scenario() -> None:
        store, row = await backend()
        sizes = []
        for n in range(1, 31):  # thirty worker processes, one after the other, each with its counters
            metrics = worker(f"host-{n}", n, retries=n % 3)
            await store.publish_metrics(worker_fields(metrics, n % 4, 0, "live", "X=1"))
            await retire(store, metrics)
            sizes.append(len(await row()))
        assert events(await row()) == sum(range(1, 31))
        retried = totals(await row())['segstream_retries_total{namespace="ns",operation="commit state"}']
        assert retried == sum(n % 3 for n in range(1, 31))
        assert sizes[-1] == sizes[10], f"the hash stays bounded: {sizes}"

    asyncio.run(scenario())


def test_a_fold_that_failed_counts_nothing_twice(backend: Backend) -> None:
    async def scenario() -> None:
        store, row = await backend()

        async def unreachable(summed: list[tuple[str, str]], others: list[str]) -> None:
            raise ConnectionError("Redis unreachable")

        metrics = worker("host-c-3", 60)
        await store.publish_metrics(worker_fields(metrics, 0, 0))
        real = store.retire_metrics
        store.retire_metrics = unreachable  # type: ignore[method-assign]
        await retire(store, metrics)  # best effort: logged, the worker goes on
        store.retire_metrics = real  # type: ignore[method-assign]
        assert events(await row()) == 60, "its fields stay"
        metrics.batch(5, 0, 0, 0.1)
        await store.publish_metrics(worker_fields(metrics, 0, 0))
        assert events(await row()) == 65, "the new id counts from the failed fold: nothing twice"

    asyncio.run(scenario())


def test_a_resent_fold_adds_nothing_and_the_served_sums_never_drop(backend: Backend) -> None:
    async def scenario() -> None:
        store, row = await backend()
        metrics = worker("host-d-4", 30)
        await store.publish_metrics(worker_fields(metrics, 0, 0))
        final, summed, others = retired_fields(metrics)
        await store.publish_metrics(final)
        await store.retire_metrics(summed, others)
        await store.retire_metrics(summed, others)  # a cluster client resending it after a lost reply
        assert events(await row()) == 30
        served: list[float] = []
        for n in range(40):  # rolling restarts with batch times no binary fraction holds exactly
            metrics = Metrics(reporter=f"host-{n}")
            for _ in range(3):
                metrics.batch(1, 0, 0, 1.0000006)
                await store.publish_metrics(worker_fields(metrics, 0, 0))
                served.append(totals(await row())['segstream_batch_seconds_sum{namespace="ns"}'])
            metrics.batch(1, 0, 0, 0.3000004)  # after its last report: the final totals carry it
            await retire(store, metrics)
            served.append(totals(await row())['segstream_batch_seconds_sum{namespace="ns"}'])
        assert all(b >= a for a, b in itertools.pairwise(served)), "a counter never goes back"
        assert served[-1] == pytest.approx(0.25 + 40 * (3 * 1.0000006 + 0.3000004), abs=1e-4)
        assert events(await row()) == 30 + 40 * 4

    asyncio.run(scenario())


def test_a_failed_final_report_keeps_the_id_and_big_counts_fold_exactly(backend: Backend) -> None:
    async def scenario() -> None:
        store, row = await backend()
        metrics = worker("host-e-5", 100)
        await store.publish_metrics(worker_fields(metrics, 0, 0))
        metrics.batch(6, 0, 0, 0.1)
        real = store.publish_metrics

        async def unreachable(fields: object) -> None:
            raise ConnectionError("Redis unreachable")

        store.publish_metrics = unreachable  # type: ignore[method-assign]
        await retire(store, metrics)  # nothing folded: the id goes on
        store.publish_metrics = real  # type: ignore[method-assign]
        assert metrics.reporter == "host-e-5"
        await store.publish_metrics(worker_fields(metrics, 0, 0))
        assert events(await row()) == 106, "every event served, none twice"
        big = worker("host-f-6", 2**53 + 1)
        await store.publish_metrics(worker_fields(big, 0, 0))
        await retire(store, big)
        await retire(store, metrics)
        assert (await row())["w:retired:events"] == str(2**53 + 1 + 106), "exact beyond 2^53 (HINCRBY)"

    asyncio.run(scenario())
