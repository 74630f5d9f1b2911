"""`definitions apply` refuses to run next to live workers; it tells them from the metrics hash."""

from __future__ import annotations

from streams.store.metrics_hash import running_workers

NOW = 1_800_000_000.0


def test_a_worker_that_reported_recently_and_did_not_stop_is_running() -> None:
    row = {
        "w:host-1:updated_at": f"{NOW - 2:.3f}",  # running
        "w:host-1:events": "120",
        "w:host-2:updated_at": f"{NOW - 60:.3f}",  # silent for a minute: crashed or gone
        "w:host-3:updated_at": f"{NOW - 1:.3f}",  # stopped gracefully after its last report
        "w:host-3:stopped_at": f"{NOW - 0.5:.3f}",
        "w:host-4:updated_at": f"{NOW - 1:.3f}",  # restarted (same id) after an earlier graceful stop
        "w:host-4:stopped_at": f"{NOW - 30:.3f}",
        "w:host-5:updated_at": "not a number",
        "lag:0": "3",
    }
    assert running_workers(row, NOW) == {"host-1": 2.0, "host-4": 1.0}
    assert running_workers(row, NOW, fresh_s=1.5) == {"host-4": 1.0}
    assert running_workers({}, NOW) == {}
