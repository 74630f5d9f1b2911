"""`segstream sample`: realistic synthetic events (streams/sample/generator.py), to a file or a topic."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    s = sub.add_parser("sample", help="generate realistic synthetic events")
    s.add_argument("--customers", type=int, default=1000)
    s.add_argument("--days", type=int, help="length of the period (default 365; order-history 548)")
    s.add_argument(
        "--profile",
        choices=("default", "order-history"),
        default="default",
        help="default: engagement-heavy; order-history: an 18-month order export, most customers new",
    )
    s.add_argument("--seed", type=int, default=42)
    s.add_argument("--malformed", type=float, default=0.0, help="share of malformed events, e.g. 0.01")
    s.add_argument("--start", help="first day, ISO date (default 2026-01-01)")
    s.add_argument("--output", help="JSONL file (.gz for gzip); default: produce to the events topic")
    s.add_argument("--topic", help="topic to produce to (default SEGSTREAM_EVENTS_TOPIC)")


def _waiting(line: str) -> None:
    """Where the command says it waits for a service: stdout, by its start line (as `streams.cli` does)."""
    print(f"segstream sample is {line}", flush=True)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """`segstream sample`: to a JSONL file, or produced to the events topic with a progress bar."""
    from streams.sample import generator as sample

    try:
        spec = sample.SampleSpec(
            customers=args.customers,
            days=args.days if args.days is not None else sample.PROFILE_DAYS[args.profile],
            seed=args.seed,
            profile=args.profile,
            malformed_share=args.malformed,
            start=datetime.fromisoformat(args.start).replace(tzinfo=UTC)
            if args.start
            else sample.SampleSpec().start,
        )
    except ValueError as exc:  # bad input: one line, exit 2 (streams/errors.py)
        print(f"segstream sample: {exc}", file=sys.stderr)
        return 2
    if args.output:
        count = sample.write_jsonl(spec, Path(args.output))
        print(f"wrote {count} events to {args.output}")
    else:
        from streams.bootstrap import ensure_topics, wait_for_services
        from streams.progress import Bar

        asyncio.run(wait_for_services(settings, _waiting, redis=False))
        topic = args.topic or settings.events_topic
        # only the topic written to: another one (e.g. an events topic of another partition count) is not ours
        asyncio.run(ensure_topics(settings, None if topic == settings.events_topic else [topic]))
        with Bar(f"sample -> {topic}", spec.days) as bar:

            def sent(count: int, line: bytes) -> None:  # percent and ETA: days of the period sent
                bar.update(sample.days_into(spec, line) or 0.0, detail=f"{count:,} events")

            count = asyncio.run(
                sample.produce(spec, settings.kafka_bootstrap, topic, sent, **settings.kafka_security())
            )
            bar.update(spec.days, detail=f"{count:,} events")
        print(f"produced {count} events to {topic}")
    return 0
