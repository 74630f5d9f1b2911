"""Counters the worker keeps, exposed in Prometheus text format by the read side."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Metrics:
    events: int = 0
    transitions: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    batches: int = 0
    batch_seconds_total: float = 0.0
    batch_seconds_last: float = 0.0
    swept_customers: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    # who reports these to the metrics hash ('' until the first retire: metrics_hash.WORKER_ID) and the totals
    # already folded into a namespace's retired ones when that id retired (metrics_hash.retired_fields)
    reporter: str = ""
    folded: dict[str, float] = field(default_factory=dict)
    alive_next: float = 0.0  # monotonic time of the next keep-alive a long sweep sends (`progress_report`)

    def batch(
        self, events: int, transitions: int, dead_letters: int, seconds: float, duplicates: int = 0
    ) -> None:
        self.events += events
        self.transitions += transitions
        self.dead_letters += dead_letters
        self.duplicates += duplicates
        self.batches += 1
        self.batch_seconds_total += seconds
        self.batch_seconds_last = seconds

    def swept(self, customers: int, transitions: int) -> None:
        self.swept_customers += customers
        self.transitions += transitions

    def retry(self, what: str) -> None:
        self.retries[what] += 1

    def prometheus(self) -> str:
        lines = [
            f"segstream_events_processed_total {self.events}",
            f"segstream_transitions_total {self.transitions}",
            f"segstream_dead_letters_total {self.dead_letters}",
            f"segstream_duplicate_events_total {self.duplicates}",
            f"segstream_batches_total {self.batches}",
            f"segstream_batch_seconds_sum {self.batch_seconds_total:.6f}",
            f"segstream_batch_seconds_last {self.batch_seconds_last:.6f}",
            f"segstream_swept_customers_total {self.swept_customers}",
        ]
        lines += [f'segstream_retries_total{{operation="{k}"}} {v}' for k, v in sorted(self.retries.items())]
        return "\n".join(lines) + "\n"
