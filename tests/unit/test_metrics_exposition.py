"""/metrics (streams/store/metrics_hash.prometheus): per-worker series name only the workers running. Every
process start is a new worker id, and the hash keeps the ids of processes long gone (their counters stay in
the namespace's totals, which must never drop); a gauge per worker of them all grew the dashboard's "batch
latency (last)" panel by one flat line per restart or crash, for ever."""

from __future__ import annotations

from streams.store.metrics_hash import prometheus

NOW = 1_800_000_000.0


def test_batch_seconds_last_is_served_for_running_workers_only() -> None:
    row = {
        "w:alive-1-aa:updated_at": f"{NOW - 1:.3f}",
        "w:alive-1-aa:events": "50",
        "w:alive-1-aa:batch_seconds_last": "0.020000",
        "w:crashed-7-bb:updated_at": f"{NOW - 3600:.3f}",  # killed an hour ago
        "w:crashed-7-bb:events": "900",
        "w:crashed-7-bb:batch_seconds_last": "0.500000",
        "w:stopped-9-cc:updated_at": f"{NOW - 5:.3f}",  # stopped gracefully
        "w:stopped-9-cc:stopped_at": f"{NOW - 4:.3f}",
        "w:stopped-9-cc:events": "40",
        "w:stopped-9-cc:batch_seconds_last": "0.300000",
    }
    text = prometheus(row, "main", now=NOW)
    last = [line for line in text.splitlines() if line.startswith("segstream_batch_seconds_last{")]
    assert last == ['segstream_batch_seconds_last{namespace="main",worker="alive-1-aa"} 0.020000']
    # the totals keep every worker that ever ran: a counter never goes back
    assert 'segstream_events_processed_total{namespace="main"} 990' in text
    assert 'segstream_workers_running{namespace="main"} 1' in text
