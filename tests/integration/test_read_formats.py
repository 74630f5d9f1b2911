"""Every read answer refuses a namespace it cannot read, in one line (409, the CLI exits 3), never a 500
or an answer of zeros (review of 7 December 2026):
- a customer hash whose `state` is of an earlier storage format: `/customers/{id}` said 409, but its
  `/history` and `?as_of=` answered 500 with a traceback in the log;
- a namespace whose partitions keep their counters in an earlier format (no `days` field) or in one this
  segstream does not know (a later release's): `/kpis` and `/members` said 409, but `/segments` answered
  counts, `/crosstab` every cell 0 (the crossing keys came later), `/health` "ok"; and a later format was
  called "written by an earlier segstream"."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from segmentation.state_codec import nul_free, raw_state
from segmentation.state_mapping import state_from_mapping, stored_part
from streams.store.connection import sync_client
from streams.store.keys import KeySpace
from streams.store.replies import TEXT_OPTIONS
from streams.store.weeks import FORMAT, FORMAT_FIELD
from tests.integration.test_storage_format import KNOWN, replayed, served
from tests.services import Services

pytestmark = pytest.mark.integration
CUSTOMER_ROUTES = (
    f"/customers/{KNOWN}",
    f"/customers/{KNOWN}/history",
    f"/customers/{KNOWN}/segments/lifecycle?as_of=2026-03-01T00:00:00Z",
)
AGGREGATE_ROUTES = (
    "/grids/lifecycle/kpis",
    "/grids/lifecycle/segments",
    "/crosstab/lifecycle/value",
    "/grids/lifecycle/segments/new/members",
)


def _statuses(settings: object, paths: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    out = {}
    for path in paths:
        status, body = asyncio.run(served(settings, path))  # type: ignore[arg-type]
        out[path] = (status, str(body.get("error", "")) if isinstance(body, dict) else "")
    return out


def test_a_customer_of_an_earlier_storage_format_is_refused_by_every_customer_route(
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, key = replayed("f2", services, topic_name, redis_prefix, tmp_path, monkeypatch)
    monkeypatch.setenv("SEGSTREAM_NAMESPACE", "f2")
    client = sync_client(settings.redis_url, **TEXT_OPTIONS)
    try:
        row = {str(k): str(v) for k, v in client.hgetall(key).items()}
        earlier = bytes([2]) + nul_free(raw_state(stored_part(state_from_mapping(row))))
        client.hset(key, "state", earlier)
    finally:
        client.close()
    got = _statuses(settings, CUSTOMER_ROUTES)
    assert {path: status for path, (status, _) in got.items()} == dict.fromkeys(CUSTOMER_ROUTES, 409)
    assert all("storage format 2" in message and "segstream replay" in message for _, message in got.values())


@pytest.mark.parametrize(
    ("kept", "says"),
    [(None, "written by an earlier segstream"), (FORMAT + "/v9", "which this segstream does not know")],
)
def test_a_namespace_of_another_counter_format_is_refused_by_every_route(
    kept: str | None,
    says: str,
    services: Services,
    topic_name: Callable[[str], str],
    redis_prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, _ = replayed("other", services, topic_name, redis_prefix, tmp_path, monkeypatch)
    monkeypatch.setenv("SEGSTREAM_NAMESPACE", "other")
    keys = KeySpace(settings.key_prefix, "other", settings.events_topic)
    client = sync_client(settings.redis_url, **TEXT_OPTIONS)
    try:
        for p in range(settings.topic_partitions):
            if kept is None:  # as an earlier segstream left it: no format field, no crossing keys
                client.hdel(keys.partition_meta(p), FORMAT_FIELD)
                client.delete(keys.crosstab(p, "lifecycle|value"))
            else:
                client.hset(keys.partition_meta(p), FORMAT_FIELD, kept)
    finally:
        client.close()
    got = _statuses(settings, AGGREGATE_ROUTES + CUSTOMER_ROUTES)
    assert {path: status for path, (status, _) in got.items()} == dict.fromkeys(got, 409)
    assert all("namespace 'other'" in message and says in message for _, message in got.values()), got
    status, health = asyncio.run(served(settings, "/health"))
    assert status == 503 and isinstance(health, dict) and says in health["error"]
    # its workers' metrics are still served: `segstream_workers_running == 0` must fire when they stop on it
    status, _ = asyncio.run(served(settings, "/metrics", text=True))
    assert status == 200
