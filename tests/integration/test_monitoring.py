"""The shipped Grafana dashboard and Prometheus alert rules (monitoring/) query only metrics that exist: every
metric name they use is on `/metrics` of the real read API while a real worker runs on real Kafka + Redis
(issue 17, item 5). A renamed metric would otherwise leave a panel empty and an alert never firing."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from streams.bootstrap import worker_runtime
from streams.read import SegmentReader
from streams.read.api import make_app
from streams.read.auth import Authenticator
from streams.sample import generator as sample
from streams.settings import Settings
from streams.store.connection import async_client
from tests.integration.worker_harness import applied_offsets, make_settings
from tests.services import Services

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "monitoring" / "alerts.yml"
DASHBOARD = ROOT / "monitoring" / "grafana-dashboard.json"
METRIC = re.compile(r"\bsegstream_[a-z_]+\b")
DURATION = re.compile(r"^\d+[smhdwy]$")


def alert_rules() -> list[dict[str, Any]]:
    """The rules file, checked for the structure Prometheus loads: groups of named rules with an expr."""
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert isinstance(document, dict) and set(document) == {"groups"}
    rules: list[dict[str, Any]] = []
    for group in document["groups"]:
        assert isinstance(group["name"], str) and group["rules"], group
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert isinstance(rule["alert"], str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert "for" not in rule or DURATION.match(rule["for"]), rule
            assert rule["labels"]["severity"] in ("warning", "critical"), rule
            assert rule["annotations"]["summary"], rule
            rules.append(rule)
    return rules


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v.get("definition")]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    return exprs


def used_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is used (alert names, dashboard)."""
    used: dict[str, set[str]] = {}
    sources = [(r["alert"], r["expr"]) for r in alert_rules()] + [("dashboard", e) for e in dashboard_exprs()]
    for where, expr in sources:
        names = METRIC.findall(expr)
        assert names, f"{where}: {expr!r} uses no segstream metric"
        for name in names:
            used.setdefault(name, set()).add(where)
    return used


def exposed(text: str) -> dict[str, list[str]]:
    """Sample name -> its sample lines, from a Prometheus text exposition."""
    samples: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            samples.setdefault(re.split(r"[{ ]", line, maxsplit=1)[0], []).append(line)
    return samples


async def metrics_text(settings: Settings) -> str:
    """GET /metrics of the real API app over HTTP."""
    client = async_client(settings.redis_url)
    runner = web.AppRunner(make_app(SegmentReader(client, settings), Authenticator.disabled()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 200
            return await resp.text()
    finally:
        await runner.cleanup()
        await client.aclose()


def test_alert_rules_and_dashboard_use_only_metrics_a_running_worker_exposes(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    used = used_metrics()
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2, namespace="main")
    spec = sample.SampleSpec(customers=40, days=90, seed=5, malformed_share=0.05, limit=1500)

    async def scenario() -> str:
        async with worker_runtime(settings) as runtime:
            count = await sample.produce(spec, settings.kafka_bootstrap, settings.events_topic)
            task = asyncio.create_task(runtime.worker.run())
            deadline = time.monotonic() + 60
            try:
                while sum((o or -1) + 1 for o in applied_offsets(settings).values()) < count:
                    assert not task.done() and time.monotonic() < deadline, "the worker did not apply them"
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.5)  # one more report per partition: lag 0, fresh timestamps
                text = await metrics_text(settings)
            finally:
                runtime.worker.stop()
                await asyncio.wait_for(task, 30)
        assert f'segstream_events_processed_total{{namespace="main"}} {count}' in text
        return text

    text = asyncio.run(scenario())
    samples = exposed(text)
    missing = {name: sorted(where) for name, where in used.items() if name not in samples}
    assert missing == {}, f"used by the dashboard or alert rules but not on /metrics: {missing}"
    # what the rules read, with the values a healthy, caught-up worker gives
    assert samples["segstream_workers_running"] == ['segstream_workers_running{namespace="main"} 1']
    assert all(line.endswith(" 0") for line in samples["segstream_consumer_lag"]), samples
    reported = [
        float(line.rsplit(" ", 1)[1]) for line in samples["segstream_partition_last_report_timestamp_seconds"]
    ]
    assert len(reported) == 2 and all(time.time() - at < 15 for at in reported)
    assert 'segstream_retries_total{namespace="main",operation="fenced"} 0' in text
    dead = int(samples["segstream_dead_letters_total"][0].rsplit(" ", 1)[1])
    assert dead > 0  # the malformed share reached the counter the dead-letter alert divides
