"""The worker's counters, published to one Redis hash per namespace so the API process can serve /metrics.

Hash `<prefix>:<namespace>:metrics` (docs/read_side.md):
- `w:<worker>:<counter>` per worker process (`<worker>` = host-pid-random): events, transitions, dead_letters,
  duplicates, batches, batch_seconds_sum, batch_seconds_last, swept_customers, updated_at (epoch seconds,
  refreshed every second by a worker that owns a partition, busy or idle), mode (its SEGSTREAM_MODE, `live`
  or `replay`), applies (its other settings that change what it writes, `mode_guard.applied_settings`);
  (`stopped_at`, on a graceful stop, from workers before the fold below: still read);
- `r:<worker>:<operation>`: retries of a Redis or Kafka operation, and partitions refused (`fenced`,
  `rewound`, `out of order batch`), per worker process;
- `lag:<partition>`: events behind the partition's high watermark, written by its current owner;
- `seen:<partition>`: epoch seconds of its owner's last report (every second while owned, busy or idle);
- `w:retired:<counter>`, `r:retired:<operation>`: the totals of the workers that retired from the namespace
  (stopped, or moved to another one after a promote): each writes its final totals, then folds what its id
  holds into them and deletes its own fields in one script (`FOLD`, which finds nothing the second time if
  a client resends it): the hash no longer grows by ~27 fields per worker start, and the sums never go back.
  A worker then reports under a new id (`<id>.<hex>`), counting from the totals it folded, so nothing counts
  twice even if it comes back to the namespace (a promote back) or its fold failed (its fields then stay).
Counters of a worker id are totals since it started reporting; the API sums them over workers.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Final

from streams.store.counters import Metrics

WORKER_ID: Final = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}".replace(":", "_")
"""One per process start: a container restarted in place keeps its host name and runs the worker as pid 1
again, and reusing the id would overwrite the totals of the process before, so the summed counters served on
/metrics would drop and Prometheus would count the other workers' whole totals as new."""

FRESH_S: Final = 15.0
"""A worker that reported this recently is running: it reports every second while it owns a partition."""
# counter name in the hash -> (Prometheus name, type, help)
COUNTERS: Final = {
    "events": ("segstream_events_processed_total", "counter", "Events read from the events topic."),
    "transitions": ("segstream_transitions_total", "counter", "Segment transitions published."),
    "dead_letters": ("segstream_dead_letters_total", "counter", "Events sent to the dead-letter topic."),
    "duplicates": (
        "segstream_duplicate_events_total",
        "counter",
        "Events whose id was applied already (redeliveries, resent events): skipped, no effect.",
    ),
    "swept_customers": ("segstream_swept_customers_total", "counter", "Customers advanced by time."),
}


OPERATIONS: Final = (
    "claim partition",
    "load states",
    "commit state",
    "read offset",
    "read due index",
    "read definitions version",
    "record definitions",
    "check definitions",
    "check partitions",
    "record partition count",
    "read definitions realignment",
    "record realignment",
    "release partition",
    "publish transitions and dead letters",
    "fenced",
    "rewound",
    "out of order batch",
)
"""What `Metrics.retry` counts (streams/worker): always exposed, at 0 until the first, so that `increase()` in
an alert rule sees the first retry (a series that appears at 1 has no increase). Every operation the worker
retries is listed (tests/unit/test_retried_operations_monitored.py)."""


RETIRED: Final = "retired"
FOLD: Final = """
local key, n = KEYS[1], tonumber(ARGV[1])
for i = 1, n do
  local field, into = ARGV[2 * i], ARGV[2 * i + 1]
  local value = redis.call('HGET', key, field)
  if value then
    if string.sub(into, -18) == ':batch_seconds_sum' then
      local sum = (tonumber(redis.call('HGET', key, into) or '') or 0) + tonumber(value)
      redis.call('HSET', key, into, string.format('%.6f', sum))
    else
      redis.call('HINCRBY', key, into, value)
    end
    redis.call('HDEL', key, field)
  end
end
if #ARGV >= 2 * n + 2 then redis.call('HDEL', key, unpack(ARGV, 2 * n + 2)) end
"""
"""ARGV (`fold_args`): n, n (field, retired field) pairs, then the other fields to delete. It folds what the
hash holds, not what the client says, so a resent fold (redis-py's cluster client resends a command whose
reply was lost) finds nothing left to add; counts with HINCRBY (exact in 64 bits, where Lua's doubles are
not beyond 2^53); HGET/HSET/HINCRBY/HDEL only, commands segstream's ACL user has."""


def _totals(metrics: Metrics) -> dict[str, float]:
    """What a report counts, summed over workers: totals since the reporter's id began (`folded` off)."""
    now: dict[str, float] = {
        "events": metrics.events,
        "transitions": metrics.transitions,
        "dead_letters": metrics.dead_letters,
        "duplicates": metrics.duplicates,
        "batches": metrics.batches,
        "batch_seconds_sum": metrics.batch_seconds_total,
        "swept_customers": metrics.swept_customers,
    }
    now.update((f"r:{op.replace(':', '_')}", n) for op, n in metrics.retries.items())
    return {name: value - metrics.folded.get(name, 0) for name, value in now.items()}


def counter_fields(metrics: Metrics) -> dict[str, str | int | float]:
    """The summed counters under the worker's current id: totals since that id began."""
    who = metrics.reporter or WORKER_ID
    fields: dict[str, str | int | float] = {}
    for name, value in _totals(metrics).items():
        if name.startswith("r:"):
            fields[f"r:{who}:{name[2:]}"] = round(value)
        else:
            fields[f"w:{who}:{name}"] = f"{value:.6f}" if name == "batch_seconds_sum" else round(value)
    return fields


def worker_fields(
    metrics: Metrics, partition: int, lag: int | None, mode: str = "", applies: str = ""
) -> dict[str, str | int | float]:
    """A report of the worker's counters and the partition's lag; `mode`, its SEGSTREAM_MODE, and `applies`,
    its other settings that change what it writes, let a worker started with others be refused
    (`streams/worker/mode_guard.py`)."""
    prefix = f"w:{metrics.reporter or WORKER_ID}:"
    fields = counter_fields(metrics)
    fields[prefix + "batch_seconds_last"] = f"{metrics.batch_seconds_last:.6f}"
    fields[prefix + "updated_at"] = f"{time.time():.3f}"
    fields[f"seen:{partition}"] = fields[prefix + "updated_at"]
    if mode:
        fields[prefix + "mode"] = mode
    if applies:
        fields[prefix + "applies"] = applies
    if lag is not None:
        fields[f"lag:{partition}"] = lag
    return fields


def retired_fields(
    metrics: Metrics,
) -> tuple[dict[str, str | int | float], list[tuple[str, str]], list[str]]:
    """The worker's reporting id retiring from a namespace (it stopped, or follows a promote): its final
    counters (to write first), each counter field with the retired one it folds into, and its other fields
    (`FOLD`); then `rotate`."""
    who = metrics.reporter or WORKER_ID
    final = counter_fields(metrics)
    summed = [(field, f"{field[0]}:{RETIRED}:{field.split(':', 2)[2]}") for field in final]
    others = [f"w:{who}:{n}" for n in ("batch_seconds_last", "updated_at", "mode", "applies", "stopped_at")]
    return final, summed, others


def rotate(metrics: Metrics) -> None:
    """The next report goes out under a new id counting from here, whether the fold lands or not: an id
    once folded is never reported again, so its totals are never counted twice."""
    metrics.folded = {name: value + metrics.folded.get(name, 0) for name, value in _totals(metrics).items()}
    metrics.reporter = f"{WORKER_ID}.{secrets.token_hex(3)}"


def fold_args(summed: list[tuple[str, str]], others: list[str]) -> list[str]:
    """`FOLD`'s ARGV."""
    return [str(len(summed)), *(x for pair in summed for x in pair), *others]


def running_workers(row: Mapping[str, str], now: float, fresh_s: float = FRESH_S) -> dict[str, float]:
    """Workers that reported within `fresh_s` seconds and have not stopped since: id -> seconds since."""
    reported: dict[str, float] = {}
    stopped: dict[str, float] = {}
    for name, value in row.items():
        if not name.startswith("w:"):
            continue
        worker, _, field = name[2:].rpartition(":")
        try:
            at = float(value)
        except ValueError:
            continue
        if field == "updated_at":
            reported[worker] = at
        elif field == "stopped_at":
            stopped[worker] = at
    return {
        worker: max(0.0, now - at)
        for worker, at in reported.items()
        if now - at <= fresh_s and stopped.get(worker, float("-inf")) < at
    }


def running_values(row: Mapping[str, str], now: float, field: str) -> dict[str, str]:
    """`field` (`mode`, `applies`) of each running worker that reported it (`worker_fields`): id -> value."""
    return {w: row[f"w:{w}:{field}"] for w in running_workers(row, now) if f"w:{w}:{field}" in row}


def prometheus(row: Mapping[str, str], namespace: str, now: float | None = None) -> str:
    """Prometheus text exposition (version 0.0.4) of a metrics hash."""
    totals: dict[str, float] = defaultdict(float)
    last: dict[str, float] = {}
    lags: dict[str, int] = {}
    seen: dict[str, float] = {}
    retries: dict[str, float] = dict.fromkeys(OPERATIONS, 0.0)
    for name, value in row.items():
        try:
            number = float(value)
        except ValueError:
            continue
        if name.startswith("lag:"):
            lags[name[4:]] = int(number)
        elif name.startswith("seen:"):
            seen[name[5:]] = number
        elif name.startswith("r:"):
            operation = name[2:].partition(":")[2]
            retries[operation] = retries.get(operation, 0.0) + number
        elif name.startswith("w:"):
            worker, _, counter = name[2:].rpartition(":")
            if counter in COUNTERS or counter in ("batches", "batch_seconds_sum"):
                totals[counter] += number
            elif counter == "batch_seconds_last":
                last[worker] = number
    label = f'namespace="{_escape(namespace)}"'
    lines: list[str] = []
    for counter, (metric, kind, text) in COUNTERS.items():
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}"]
        lines.append(f"{metric}{{{label}}} {_num(totals.get(counter, 0.0))}")
    lines += [
        "# HELP segstream_batch_seconds Latency of a partition batch (decode, apply, publish, commit).",
        "# TYPE segstream_batch_seconds summary",
        f"segstream_batch_seconds_sum{{{label}}} {_num(totals.get('batch_seconds_sum', 0.0))}",
        f"segstream_batch_seconds_count{{{label}}} {_num(totals.get('batches', 0.0))}",
        "# HELP segstream_batch_seconds_last Duration of the last batch of each running worker.",
        "# TYPE segstream_batch_seconds_last gauge",
    ]
    running = running_workers(row, time.time() if now is None else now)
    for worker, seconds in sorted(last.items()):
        if worker not in running:  # gone (crashed, stopped): one flat line per restart otherwise, for ever
            continue
        lines.append(f'segstream_batch_seconds_last{{{label},worker="{_escape(worker)}"}} {_num(seconds)}')
    lines += [
        "# HELP segstream_consumer_lag Events behind the partition's high watermark.",
        "# TYPE segstream_consumer_lag gauge",
    ]
    for partition, lag in sorted(lags.items(), key=_by_partition):
        lines.append(f'segstream_consumer_lag{{{label},partition="{_escape(partition)}"}} {lag}')
    lines += [
        "# HELP segstream_partition_last_report_timestamp_seconds When the partition's owner last reported "
        "(every second while a worker owns it).",
        "# TYPE segstream_partition_last_report_timestamp_seconds gauge",
    ]
    for partition, at in sorted(seen.items(), key=_by_partition):
        lines.append(
            f'segstream_partition_last_report_timestamp_seconds{{{label},partition="{_escape(partition)}"}} '
            f"{at:.3f}"
        )
    lines += [
        "# HELP segstream_retries_total Operations retried while Redis or Kafka was unavailable, and "
        "partitions refused (fenced, rewound, out of order batch).",
        "# TYPE segstream_retries_total counter",
    ]
    for operation, n in sorted(retries.items()):
        lines.append(f'segstream_retries_total{{{label},operation="{_escape(operation)}"}} {_num(n)}')
    lines += [
        "# HELP segstream_workers_running Workers that reported in the last "
        f"{FRESH_S:.0f} s and did not stop.",
        "# TYPE segstream_workers_running gauge",
        f"segstream_workers_running{{{label}}} {len(running)}",
    ]
    return "\n".join(lines) + "\n"


def _by_partition(item: tuple[str, object]) -> int:
    return int(item[0]) if item[0].isdigit() else -1


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.6f}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
