"""The shipped alert rules and dashboard (monitoring/) against what a real worker exposes, beyond the names
test_monitoring.py checks: every label they select, group by or print exists on the series it is used with,
`rate`/`increase` read counters only (a gauge there is nonsense) and `deriv` gauges only, and counters end in
`_total` (or are a summary's `_sum`/`_count`), as Prometheus expects."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import yaml

from streams.bootstrap import worker_runtime
from streams.sample import generator as sample
from tests.integration.test_monitoring import ALERTS, alert_rules, dashboard_exprs, metrics_text
from tests.integration.worker_harness import applied_offsets, make_settings
from tests.services import Services

SELECTOR = re.compile(r"\b(segstream_[a-z_]+)\s*(?:\{([^}]*)\})?")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
FUNCTION = re.compile(r"\b(rate|increase|deriv|irate|delta)\(\s*(segstream_[a-z_]+)")


def exposition(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """(family or sample name -> type, sample name -> label names) from a Prometheus text exposition."""
    types: dict[str, str] = {}
    labels: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
            if kind == "summary":
                types[name + "_sum"] = types[name + "_count"] = "counter"
        elif line and not line.startswith("#"):
            name, _, rest = line.partition("{")
            labels.setdefault(name.split()[0], set()).update(MATCHER.findall(rest.rpartition("}")[0]))
    return types, labels


def test_labels_and_types_used_by_alerts_and_dashboard_match_the_exposition(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix, topic_partitions=2, namespace="main")
    spec = sample.SampleSpec(customers=20, days=60, seed=4, malformed_share=0.05, limit=500)

    async def scenario() -> str:
        async with worker_runtime(settings) as runtime:
            count = await sample.produce(spec, settings.kafka_bootstrap, settings.events_topic)
            task = asyncio.create_task(runtime.worker.run())
            deadline = time.monotonic() + 60
            try:
                while sum((o or -1) + 1 for o in applied_offsets(settings).values()) < count:
                    assert not task.done() and time.monotonic() < deadline
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.5)
                return await metrics_text(settings)
            finally:
                runtime.worker.stop()
                await asyncio.wait_for(task, 30)

    types, labels = exposition(asyncio.run(scenario()))
    problems: list[str] = []
    exprs = [(r["alert"], r["expr"]) for r in alert_rules()] + [("dashboard", e) for e in dashboard_exprs()]
    for where, expr in exprs:
        used = [(name, set(MATCHER.findall(body or ""))) for name, body in SELECTOR.findall(expr)]
        for name, selected in used:
            if name not in labels:
                problems.append(f"{where}: {name} not exposed")
            elif not selected <= labels[name]:
                problems.append(f"{where}: {name} has no label {sorted(selected - labels[name])}")
        grouped = {g.strip() for clause in GROUPING.findall(expr) for g in clause.split(",") if g.strip()}
        for name, _ in used:
            if name in labels and not grouped <= labels[name]:
                problems.append(f"{where}: grouping by {sorted(grouped - labels[name])}, absent on {name}")
        for function, name in FUNCTION.findall(expr):
            kind = types.get(name)
            wanted = "gauge" if function in ("deriv", "delta") else "counter"
            if kind != wanted:
                problems.append(f"{where}: {function}({name}) on a {kind}, not a {wanted}")
    for name, kind in types.items():
        if kind == "counter" and not name.endswith(("_total", "_sum", "_count")):
            problems.append(f"counter {name} does not end in _total")
    # the alerts' annotations print labels the series they fire on carry
    for rule in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"][0]["rules"]:
        printed = set(re.findall(r"\$labels\.([a-z_]+)", str(rule["annotations"])))
        kept = set.intersection(*(labels.get(n, set()) for n, _ in SELECTOR.findall(rule["expr"])))
        grouped = {g.strip() for c in GROUPING.findall(rule["expr"]) for g in c.split(",")}
        available = grouped if grouped else kept
        if not printed <= available:
            problems.append(f"{rule['alert']}: prints {sorted(printed - available)}, not on its result")
    assert problems == []
