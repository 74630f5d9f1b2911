"""RFM breakpoints proposed from the stored population's quantiles, written as a new definitions version.

Breakpoints change only through a new definitions version (BRIEF section 2): calibrate never changes
anything by itself. It reads every stored customer with at least one purchase, takes recency (days from the
last purchase to the newest watermark of the namespace: the population's "now"), frequency (orders) and
monetary (net, base currency), and proposes for each the quantiles 1/5 .. 4/5 as the four breakpoints
(scores 1-5; the core has exactly five scores, so `--bins` must be 5). Each breakpoint is the smallest whole
number of days or orders, or minor unit of the base currency, strictly above its quantile (a score goes up
once a breakpoint is reached: the customers at the quantile's value stay below it), and each is made
strictly greater than the previous one
(ties are common in frequency).
The new file is the old document with the `rfm` breakpoints replaced and the version bumped; then
`segstream definitions diff NEW.yaml` shows who would move (calibrate prints it too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import redis.asyncio as aioredis
import yaml

from segmentation.rfm import RfmConfig
from segmentation.state import CustomerState
from streams.admin.definitions_change import stored_customers
from streams.store.keys import KeySpace
from streams.store.stored_state import stored_state
from streams.store.writes import from_us

BINS = 5


@dataclass
class Population:
    recency_days: list[float]
    orders: list[int]
    monetary: list[Decimal]
    reference: datetime | None
    customers: int = 0
    unit: Decimal = Decimal("0.01")  # the base currency's minor unit: money breakpoints are multiples of it


async def read_population(
    client: aioredis.Redis, keys: KeySpace, partitions: int, exponent: int
) -> Population:
    watermarks = []
    for p in range(partitions):
        value = await client.hget(keys.partition_meta(p), "watermark")
        if value is not None:
            watermarks.append(int(value))
    reference = from_us(max(watermarks)) if watermarks else None
    scale = Decimal(1).scaleb(-exponent)
    population = Population([], [], [], reference, unit=scale)
    for p in range(partitions):
        async for rows in stored_customers(client, keys, p):
            for _, row in rows:
                count_in(population, stored_state(row, keys.namespace))
    return population


def count_in(population: Population, state: CustomerState) -> None:
    """One stored customer, its R, F and M as the core scores them (a buyer only; M net of refunds and
    never below 0, `CustomerState.monetary_minor`: a customer refunded more than bought scores M = 1 like
    one at 0, and must not pull the quantiles below what any score can see)."""
    population.customers += 1
    if state.last_purchase_at is None or state.orders <= 0:
        return
    now = population.reference or state.clock or state.last_purchase_at
    population.recency_days.append(max(0.0, (now - state.last_purchase_at).total_seconds() / 86400))
    population.orders.append(state.orders)
    population.monetary.append(Decimal(state.monetary_minor) * population.unit)


def _ascending(values: list[Decimal], step: Decimal) -> list[Decimal]:
    out: list[Decimal] = []
    for v in values:
        v = max(v, step)  # breakpoints must be positive
        if out and v <= out[-1]:
            v = out[-1] + step
        out.append(v)
    return out


def propose(population: Population, bins: int = BINS) -> dict[str, list[Any]]:
    """Four breakpoints per dimension from the quantiles 1/bins .. (bins-1)/bins."""
    if bins != BINS:
        raise ValueError(f"the RFM grid scores 1-5: --bins must be {BINS} (got {bins})")
    if len(population.orders) < bins:
        raise ValueError(f"only {len(population.orders)} customers with purchases: too few to calibrate")
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    recency = np.quantile(np.array(population.recency_days, dtype=float), qs)
    frequency = np.quantile(np.array(population.orders, dtype=float), qs)
    monetary = np.quantile(np.array([float(m) for m in population.monetary], dtype=float), qs)
    unit = population.unit  # not always a cent: a breakpoint finer than the base currency does not load
    return {
        "recency_days": [int(v) for v in _ascending([_above(x, Decimal(1)) for x in recency], Decimal(1))],
        "frequency_orders": [
            int(v) for v in _ascending([_above(x, Decimal(1)) for x in frequency], Decimal(1))
        ],
        "monetary": [str(v) for v in _ascending([_above(x, unit) for x in monetary], unit)],
    }


def _above(quantile: float, step: Decimal) -> Decimal:
    """The smallest multiple of `step` strictly above the quantile. A score goes up once a breakpoint is
    *reached*, so customers at the quantile's own value (ties: 1 order, one price) stay in the lower score
    and at least that share of the population is below the breakpoint; rounding up to the quantile itself
    put them all above it (one-time buyers at F = 2, nobody at F = 1)."""
    return Decimal(repr(float(quantile))).quantize(step, ROUND_FLOOR) + step


def bump_version(version: str) -> str:
    match = re.search(r"(\d+)$", version)
    if match is None:
        return f"{version}-1" if version else "1"
    return f"{version[: match.start()]}{int(match[1]) + 1}"


def base_document(path: Path | None) -> dict[str, Any]:
    text = (
        path.read_text(encoding="utf-8")
        if path
        else resources.files("segmentation").joinpath("definitions.yaml").read_text(encoding="utf-8")
    )
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise ValueError("definitions: expected a mapping")
    return document


def new_document(
    base: dict[str, Any], breakpoints: dict[str, list[Any]], version: str | None
) -> dict[str, Any]:
    document = dict(base)
    rfm = dict(document.get("rfm") or {})
    rfm.update(breakpoints)
    document["rfm"] = rfm
    document["version"] = version or bump_version(str(base.get("version", "")))
    return document


def dump(document: dict[str, Any], note: str) -> str:
    header = "".join(f"# {line}\n" for line in note.splitlines())
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)


DIMENSIONS = ("recency_days", "frequency_orders", "monetary")


def breakpoints(
    rfm: RfmConfig, proposal: dict[str, list[Any]], exponent: int
) -> dict[str, dict[str, list[str | int]]]:
    """Current and proposed breakpoints per dimension: days and orders as integers, money as exact decimal
    strings with the currency's digits. What both the table and `--json` show, so neither leaks a Python
    repr like `Decimal('50')`, and JSON readers get no float."""
    unit = Decimal(1).scaleb(-exponent)

    def text(name: str, value: Any) -> str | int:
        return format(Decimal(value).quantize(unit), "f") if name == "monetary" else int(value)

    return {
        name: {
            "current": [text(name, v) for v in getattr(rfm, name)],
            "proposed": [text(name, v) for v in proposal[name]],
        }
        for name in DIMENSIONS
    }


def breakpoints_table(points: dict[str, dict[str, list[str | int]]], currency: str) -> str:
    """The breakpoints as a three-column table (dimension, current, proposed), one row per dimension."""
    label = {"recency_days": "recency (days)", "frequency_orders": "frequency (orders)"}
    label["monetary"] = f"monetary ({currency})"
    rows = [
        (label[n], ", ".join(map(str, p["current"])), ", ".join(map(str, p["proposed"])))
        for n, p in points.items()
    ]
    head = ("RFM breakpoints", "current", "proposed")
    widths = [max(len(r[i]) for r in (head, *rows)) + 3 for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}{b:<{widths[1]}}{c}".rstrip() for a, b, c in (head, *rows))
