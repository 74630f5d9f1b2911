"""Every operation the worker retries reaches the monitoring: it is on /metrics at 0 before its first retry
(streams/store/metrics_hash.OPERATIONS: `increase()` misses a series that appears at 1) and a shipped alert
rule (monitoring/alerts.yml) matches its `operation` label. A Redis outage during a claim retries "check
definitions" and nothing else: an alert that does not list it stays silent for the whole outage."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from streams.store.metrics_hash import OPERATIONS

ROOT = Path(__file__).resolve().parents[2]
RETRY_CALLS = ("retry", "_retry")
LABEL = re.compile(r'segstream_retries_total\{operation(=~|!~|=|!=)"([^"]*)"\}')


def retried_operations() -> dict[str, str]:
    """Operation name -> the file that retries it: the string literal given as `what` to the worker's
    `retry(action, what, ...)` and `BatchPipeline._retry(action, what)`."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "streams" / "worker").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            what = node.args[1]
            if name in RETRY_CALLS and isinstance(what, ast.Constant) and isinstance(what.value, str):
                found[what.value] = path.name
    return found


def alerting(operation: str) -> list[str]:
    """The alert rules whose `operation` matcher selects this operation (Prometheus anchors regexes)."""
    rules = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text(encoding="utf-8"))
    names = []
    for rule in (r for group in rules["groups"] for r in group["rules"]):
        for op, value in LABEL.findall(rule["expr"]):
            hit = {
                "=": operation == value,
                "!=": operation != value,
                "=~": re.fullmatch(value, operation) is not None,
                "!~": re.fullmatch(value, operation) is None,
            }[op]
            if hit:
                names.append(rule["alert"])
    return names


def test_every_retried_operation_is_exposed_and_alerted_on() -> None:
    retried = retried_operations()
    assert {"claim partition", "commit state", "publish transitions and dead letters"} <= set(retried)
    not_exposed = {op: where for op, where in retried.items() if op not in OPERATIONS}
    assert not_exposed == {}, f"retried but not on /metrics before the first retry: {not_exposed}"
    silent = {op: where for op, where in retried.items() if not alerting(op)}
    assert silent == {}, f"retried but no alert rule matches it: {silent}"
    # partitions refused, not retries: their own alerts only
    assert (alerting("fenced"), alerting("rewound")) == (["SegstreamFenced"], ["SegstreamRedisRewound"])
    assert alerting("publish transitions and dead letters") == ["SegstreamKafkaPublishRetries"]
