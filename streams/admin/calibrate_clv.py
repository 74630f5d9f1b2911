"""`segstream calibrate --model clv --events FILE [--until DATE]`: fit the CLV models, propose definitions.

BG/NBD needs each customer's purchase history *up to the calibration end* (`--until`), which a stored state
(all history so far) cannot give: the input is an event file, as `segstream replay` reads it (JSON lines,
gzip or not). Its events up to `--until` (default: the last event time of the file) are applied in file
order through the real `segmentation.apply` under the current definitions (same currency conversion,
duplicates, late events and erasures as the worker), then `segmentation.clv_fit` fits BG/NBD and Gamma-Gamma
by maximum likelihood and proposes four tiers of predicted 12-month CLV at the population's 50 %, 80 % and
95 % quantiles. Lines that cannot be parsed or applied are counted and reported, never used.
The new file is the current document plus a `clv:` section, version bumped; apply it with
`segstream definitions apply` (a `definitions diff` first shows who enters which tier).
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from segmentation import CustomerState, Definitions, InvalidEvent, apply, parse_event
from segmentation.clv import ClvConfig, figures
from segmentation.clv_fit import FitError, fit_bgnbd, fit_gamma_gamma, population_at, propose_tiers
from streams.admin import calibrate
from streams.settings import Settings

QUANTILES = (0.5, 0.8, 0.95)
TIERS = ("low", "medium", "high", "top")


@dataclass
class History:
    """The states of the event file's customers at `until`, and what was read."""

    states: dict[str, CustomerState]
    until: datetime
    events: int = 0
    after_until: int = 0
    rejected: int = 0


def lines(path: Path) -> Iterator[bytes]:
    """The non-blank lines; gzip when the file starts with the gzip magic (as `segstream replay` reads)."""
    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gz else path.open("rb") as stream:
        for line in stream:
            if line.strip():
                yield line


def replay_file(path: Path, definitions: Definitions, until: datetime | None) -> History:
    """Apply the file's events dated up to `until` (all of them without it) to fresh states, in file order."""
    states: dict[str, CustomerState] = {}
    history = History(states, until or datetime.min.replace(tzinfo=UTC))
    for line in lines(path):
        try:
            event = parse_event(line)
        except InvalidEvent:
            history.rejected += 1
            continue
        if until is not None and event.occurred_at > until:
            history.after_until += 1
            continue
        customer = event.customer_id
        try:
            states[customer] = apply(
                states.get(customer) or CustomerState.new(customer), event, definitions
            ).state
        except ValueError:  # an amount above the limit, an unknown currency, an event too early
            history.rejected += 1
            continue
        history.events += 1
        if until is None and event.occurred_at > history.until:
            history.until = event.occurred_at
    return history


def propose(history: History, definitions: Definitions) -> dict[str, Any]:
    """The fitted `clv:` section (parameters with 6 significant digits, tiers, what it was fitted on)."""
    population = population_at(history.states.values(), history.until, definitions.scale)
    bgnbd, spend = fit_bgnbd(population), fit_gamma_gamma(population)
    provisional = ClvConfig(bgnbd, spend, 365, ("all",), (Decimal(0),))
    values = _clv_values(history, provisional, definitions)
    bounds = propose_tiers(values, QUANTILES, definitions.scale)
    return {
        "bgnbd": {name: f"{value:.6g}" for name, value in bgnbd._asdict().items()},
        "gamma_gamma": {name: f"{value:.6g}" for name, value in spend._asdict().items()},
        "horizon_days": 365,
        "tiers": [{"segment": name, "from": str(bound)} for name, bound in zip(TIERS, bounds, strict=True)],
        "fitted": {
            "until": history.until.isoformat(),
            "customers": len(population.x),
            "repeat_buyers": int((population.x > 0).sum()),
        },
    }


def _clv_values(history: History, cfg: ClvConfig, definitions: Definitions) -> list[float]:
    values = []
    for state in history.states.values():
        numbers = figures(state, cfg, history.until, definitions.scale)
        if (
            numbers is not None
            and state.first_purchase_at is not None
            and state.first_purchase_at <= history.until
        ):
            values.append(numbers.clv)
    return values


def tier_counts(history: History, new: Definitions) -> dict[str, int]:
    """Customers per tier at `until` under the new definitions (as the grid will place them)."""
    cfg = new.clv
    assert cfg is not None
    counts = dict.fromkeys(cfg.segments, 0)
    for value in _clv_values(history, cfg, new):
        counts[cfg.segments[max(0, sum(1 for b in cfg.bounds if b <= value) - 1)]] += 1
    return counts


def _until(text: str | None) -> datetime | None:
    if text is None:
        return None
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:  # a date or a naive time: UTC, and a date means its end
        instant = instant.replace(tzinfo=UTC)
        if len(text) == 10:
            instant = instant.replace(hour=23, minute=59, second=59, microsecond=999_999)
    return instant.astimezone(UTC)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.bootstrap import load_definitions

    if not args.events:
        print("segstream calibrate: --model clv needs --events FILE (the history to fit on)", file=sys.stderr)
        return 2
    try:
        until = _until(args.until)
    except ValueError:
        print(f"segstream calibrate: --until {args.until!r} is not an ISO date or date-time", file=sys.stderr)
        return 2
    path = Path(args.events)
    if not path.is_file():
        print(f"segstream calibrate: {path}: no such file", file=sys.stderr)
        return 2
    current = load_definitions(settings)
    history = replay_file(path, current, until)
    try:
        section = propose(history, current)
    except FitError as exc:
        print(f"segstream calibrate: {exc}", file=sys.stderr)
        return 2
    document = calibrate.base_document(settings.definitions_file)
    document["clv"] = section
    document["version"] = args.version or calibrate.bump_version(str(document.get("version", "")))
    new = Definitions.from_mapping(document)
    counts = tier_counts(history, new)
    _report(args, history, section, counts, new)
    if args.output:
        note = (
            f"Proposed by `segstream calibrate --model clv` from {path.name}"
            f" up to {history.until.isoformat()}"
            f" ({section['fitted']['customers']} customers with purchases).\n"
            "Nothing is applied until `segstream definitions apply` with this file."
        )
        Path(args.output).write_text(calibrate.dump(document, note), encoding="utf-8")
        print(f"\nwrote {args.output}; apply with: segstream definitions apply {args.output}",
              file=sys.stderr if args.json else sys.stdout)  # fmt: skip
    return 0


def _report(
    args: argparse.Namespace,
    history: History,
    section: dict[str, Any],
    counts: dict[str, int],
    new: Definitions,
) -> None:
    if args.json:
        document = {
            "events_applied": history.events,
            "events_after_until": history.after_until,
            "lines_rejected": history.rejected,
            **section,
            "customers_per_tier": counts,
            "currency": new.currency,
            "new_version": new.version,
        }
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    fitted = section["fitted"]
    print(
        f"{history.events:,} events applied up to {history.until.isoformat()} ({history.after_until:,} later"
        f" ones left out, {history.rejected:,} lines rejected); {fitted['customers']:,} customers with"
        f" purchases, {fitted['repeat_buyers']:,} repeat buyers\n"
    )
    bg, gg = section["bgnbd"], section["gamma_gamma"]
    print("BG/NBD        r = {r}   alpha = {alpha} weeks   a = {a}   b = {b}".format(**bg))
    print("Gamma-Gamma   p = {p}   q = {q}   gamma = {gamma} {currency}".format(**gg, currency=new.currency))
    print(f"\npredicted 12-month CLV tiers ({new.currency})   customers at {history.until.date()}")
    for tier in section["tiers"]:
        print(f"  {tier['segment']:<8} from {tier['from']:>10}   {counts[tier['segment']]:>9,}")
    print(f"\nnew version {new.version!r}")
