"""Throughput of `segmentation.apply` with the default definitions on a realistic event mix.

A script, not a test: `.venv/bin/python benchmarks/bench_apply.py [--events N] [--customers N] [--rounds N]
[--items] [--definitions FILE] [--cpu]` (`--items`: purchases carry 1-3 lines with category sku prefixes).
The mix (seeded, so every run applies the same events): 60% engagement (email sent/open/click, web
visits, app sessions), 30% purchases, 5% refunds, 5% other (loyalty, support, survey, profile,
unsubscribe), over a population of customers (default 2,000, i.e. ~100 events each: mostly known
customers, as in a running stream), with event time moving forward ~1 minute per event. Each customer
has a usual channel (80% of purchases), a currency and one declared profile.
Events are parsed (validated) before timing: the stream worker hands `apply` validated events.
Baselines measured on the same events: a bare `CustomerState._replace` per event (the floor of any
immutable update) and `parse_event` alone (the validation the worker pays before `apply`). Parsing keeps
every parsed event alive here, so about half of that line is the cyclic GC walking a heap that grows by
200k models; the "GC paused" line is the validation itself (what a worker that parses, applies and drops
one batch at a time pays).
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from segmentation import CustomerState, Definitions, apply, parse_event
from streams.core import choice

_ENGAGEMENT = ("email_sent", "email_open", "email_click", "web_visit", "app_session")
_PREFIXES = ("SH-", "AP-", "AC-", "HM-", "BT-", "ZZ-")  # ZZ-: no category (other)
_OTHER = ("loyalty", "support_contact", "survey_response", "profile_update", "email_unsubscribe")


def generate(count: int, customers: int, seed: int = 42, items: bool = False) -> list[dict[str, Any]]:
    """Raw event dicts, deterministic for a given seed."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # each customer has a usual channel and currency and one declared profile, as real customers do
    profiles = [
        (
            rng.choice(("web", "store", "app", "phone")),
            rng.choice(("EUR", "EUR", "EUR", "USD", "GBP")),
            rng.randrange(1940, 2008),
            rng.choice(("FR", "DE", "SE", "ES", "US")),
        )
        for _ in range(customers)
    ]
    raws: list[dict[str, Any]] = []
    basket = random.Random(seed + 1)  # items come from their own generator: the rest of the mix is unchanged
    for i in range(count):
        number = rng.randrange(customers)
        customer = f"c{number}"
        usual_channel, currency, birth_year, region = profiles[number]
        at = start + timedelta(seconds=60 * i + rng.randrange(60))
        roll = rng.random()
        base = {
            "event_id": f"e{i}",
            "customer_id": customer,
            "occurred_at": at.isoformat(),
            "schema_version": 1,
        }
        if roll < 0.60:
            kind = rng.choice(_ENGAGEMENT)
            raw: dict[str, Any] = {"type": kind}
            if kind == "app_session":
                raw["duration_seconds"] = rng.randrange(10, 900)
            elif kind == "web_visit":
                raw["page"] = f"/p/{rng.randrange(100)}"
        elif roll < 0.90:
            raw = {
                "type": "purchase",
                "order_id": f"o{i}",
                "amount": f"{rng.randrange(500, 40000) / 100:.2f}",
                "currency": currency,
                "channel": usual_channel
                if rng.random() < 0.8
                else rng.choice(("web", "store", "app", "phone")),
                "coupon_used": rng.random() < 0.2,
            }
            if items:  # 1-3 lines, skus with the default definitions' category prefixes
                raw["items"] = [
                    {
                        "sku": f"{basket.choice(_PREFIXES)}{basket.randrange(1000)}",
                        "quantity": basket.randrange(1, 3),
                        "unit_price": f"{basket.randrange(500, 9000) / 100:.2f}",
                    }
                    for _ in range(basket.choice((1, 1, 2, 3)))
                ]
        elif roll < 0.95:
            raw = {
                "type": "refund",
                "order_id": f"o{i}",
                "amount": f"{rng.randrange(100, 5000) / 100:.2f}",
                "currency": "EUR",
            }
        else:
            kind = rng.choice(_OTHER)
            raw = {"type": kind}
            if kind == "loyalty":
                raw.update(points_delta=rng.randrange(-50, 200), tier=rng.choice((None, "silver", "gold")))
            elif kind == "support_contact":
                raw.update(channel=rng.choice(("email", "phone", "chat")), resolved=rng.random() < 0.7)
            elif kind == "survey_response":
                raw.update(score=rng.randrange(11))
            elif kind == "profile_update":
                raw.update(birth_year=birth_year, region=region)
        raws.append({**base, **raw})
    return raws


def run_apply(events: list[Any], definitions: Definitions) -> int:
    states: dict[str, CustomerState] = {}
    transitions = 0
    for event in events:
        cid = event.customer_id
        state = states.get(cid) or CustomerState.new(cid)
        outcome = apply(state, event, definitions)
        states[cid] = outcome.state
        transitions += len(outcome.transitions)
    return transitions


def run_replace(events: list[Any], definitions: Definitions) -> int:
    states: dict[str, CustomerState] = {}
    for event in events:
        cid = event.customer_id
        state = states.get(cid) or CustomerState.new(cid)
        states[cid] = state._replace(clock=event.occurred_at, orders=state.orders + 1)
    return 0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gc_paused(work: Callable[[], int]) -> int:
    """`work()` with the cyclic GC off, to tell validation cost from GC cost."""
    gc.disable()
    try:
        return work()
    finally:
        gc.enable()


def timed(
    label: str, rounds: int, work: Callable[[], int], clock: Callable[[], float] = time.perf_counter
) -> float:
    """Median events/s over `rounds` runs of `work()` (which returns the number of events processed)."""
    rates: list[float] = []
    for _ in range(rounds):
        began = clock()
        count = work()
        rates.append(count / (clock() - began))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--items", action="store_true", help="purchases carry 1-3 items (categories)")
    parser.add_argument("--definitions", help="a definitions YAML file (default: the packaged one)")
    parser.add_argument(
        "--cpu", action="store_true", help="per CPU second of this process (a shared machine)"
    )
    args = parser.parse_args()
    clock = time.process_time if args.cpu else time.perf_counter
    definitions = Definitions.from_yaml(args.definitions) if args.definitions else Definitions.default()
    raws = generate(args.events, args.customers, items=args.items)
    events = [parse_event(raw) for raw in raws]
    n = len(events)
    results = {
        "apply": timed("apply", args.rounds, lambda: (run_apply(events, definitions), n)[1], clock),
        "baseline: NamedTuple _replace": timed(
            "replace", args.rounds, lambda: (run_replace(events, definitions), n)[1], clock
        ),
        "baseline: parse_event alone": timed(
            "parse", max(1, args.rounds // 2), lambda: len([parse_event(raw) for raw in raws]), clock
        ),
        "baseline: parse_event, GC paused": timed(
            "parse",
            max(1, args.rounds // 2),
            lambda: gc_paused(lambda: len([parse_event(raw) for raw in raws])),
            clock,
        ),
    }
    print(f"machine: {platform.platform()}, Python {platform.python_version()}, CPU {cpu_model()}")
    print(f"definitions: {args.definitions or 'default'} (version {definitions.version})")
    print(choice.describe())  # SEGSTREAM_PURE_PYTHON=1: the pure-Python core
    print(
        f"events: {n} over {args.customers} customers, {args.rounds} rounds,"
        f" transitions: {run_apply(events, definitions)}"
    )
    print(f"{'what':32} {'events/s':>12} {'us/event':>10}" + (" (per CPU second)" if args.cpu else ""))
    for label, rate in results.items():
        print(f"{label:32} {rate:12,.0f} {1e6 / rate:10.2f}")


if __name__ == "__main__":
    main()
