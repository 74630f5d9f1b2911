"""Deterministic synthetic customer events: to JSON lines, to a (gzip) file, or to a Kafka topic.

Why it exists: demos, benchmarks and replay tests need realistic volume (purchases, email engagement, churn,
refunds, erasures, a share of garbage) that is byte-identical for the same :class:`SampleSpec`, so a run can
be reproduced and compared. Behaviour lives in :mod:`streams.sample.behaviour`; this module adds the
malformed lines, serialisation and the sinks.

Output is streamed in event-time order: the generator never holds the event log in memory.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, Final

import orjson

from segmentation.events import CURRENCY_EXPONENT
from streams.sample.behaviour import Event, Simulation
from streams.sample.order_history import ORDER_HISTORY_DAYS, OrderHistory

__all__ = [
    "MALFORMED_KINDS",
    "PROFILES",
    "PROFILE_DAYS",
    "SampleSpec",
    "generate",
    "keyed",
    "malformed_line",
    "produce",
    "recover_customer_id",
    "write_jsonl",
]

MALFORMED_KINDS: Final = (
    "not_json",
    "missing_field",
    "naive_timestamp",
    "negative_amount",
    "unknown_type",
    "wrong_schema_version",
)
_UNKNOWN_TYPES: Final = ("page_view", "Purchase", "purchase.v2", "cart_add", "")
_CUSTOMER_ID: Final = re.compile(rb'"customer_id"\s*:\s*"([^"\\\x00-\x1f]{1,128})"')
_SEND_CHUNK: Final = 5_000
# Profiles: the shape of the population. "default" is engagement-heavy (~120 events per customer a year);
# "order-history" is an 18-month order export, the import shape (streams/sample/order_history.py).
PROFILES: Final = ("default", "order-history")
PROFILE_DAYS: Final = {"default": 365, "order-history": ORDER_HISTORY_DAYS}  # the CLI's default --days
_WRITE_CHUNK: Final = 2_000


@dataclass(frozen=True)
class SampleSpec:
    """What to generate; equal specs give byte-identical output.

    ``malformed_share`` is the expected share of *emitted lines* that are malformed (they come in addition
    to the valid events, so the valid stream does not depend on it); ``erasure_share`` is the share of
    customers who ask to be erased during the period; ``limit`` stops after that many lines; ``profile`` is
    one of :data:`PROFILES`.
    """

    customers: int = 1000
    days: int = 365
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    seed: int = 42
    malformed_share: float = 0.0
    currency: str = "EUR"
    erasure_share: float = 0.001
    limit: int | None = None
    profile: str = "default"

    def __post_init__(self) -> None:
        if self.customers < 0 or self.days < 0:
            raise ValueError("customers and days must be >= 0")
        if self.start.utcoffset() is None:
            raise ValueError("start must be timezone-aware (event times are UTC)")
        if not 0.0 <= self.malformed_share <= 0.5:
            raise ValueError("malformed_share must be within [0, 0.5]")
        if not 0.0 <= self.erasure_share <= 1.0:
            raise ValueError("erasure_share must be within [0, 1]")
        if self.currency not in CURRENCY_EXPONENT:
            raise ValueError(f"unknown currency {self.currency!r}")
        if self.limit is not None and self.limit < 0:
            raise ValueError("limit must be >= 0")
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r} (one of: {', '.join(PROFILES)})")


def recover_customer_id(line: bytes) -> str | None:
    """The customer id of a (possibly broken) line, so even garbage lands in the customer's partition."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        match = _CUSTOMER_ID.search(line)
        return match[1].decode("utf-8", "replace") if match else None
    value = data.get("customer_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


def malformed_line(kind: str, event: Event, line: bytes, rng: random.Random, serial: int = 1) -> bytes:
    """A broken variant of ``event`` (serialised as ``line``); every kind fails ``parse_event`` by design.

    Each one is a fault seen in real feeds: a truncated write, a field a producer forgot, a local time
    without offset, a sign error, an event type the contract does not know, a producer on a newer schema.
    """
    if kind not in MALFORMED_KINDS:
        raise ValueError(f"unknown malformed kind {kind!r}")
    if kind == "not_json":
        return line[: max(1, int(len(line) * (0.3 + 0.6 * rng.random())))]  # truncated mid-write
    bad = dict(event)
    bad["event_id"] = f"{event['event_id']}-x{serial}"
    if kind == "missing_field":
        required = ["event_id", "customer_id", "occurred_at", "type"]
        required += [
            name for name in ("order_id", "amount", "channel", "points_delta", "score") if name in bad
        ]
        del bad[required[int(rng.random() * len(required))]]
    elif kind == "naive_timestamp":
        bad["occurred_at"] = str(bad["occurred_at"]).rstrip("Z")
    elif kind == "negative_amount":
        if "amount" not in bad:  # make it a purchase so the only fault is the amount
            bad = {k: bad[k] for k in ("event_id", "customer_id", "occurred_at", "schema_version")}
            bad.update(type="purchase", order_id=f"{bad['event_id']}-o", currency="EUR", channel="web")
        bad["amount"] = f"-{1 + int(rng.random() * 200)}.{int(rng.random() * 100):02d}"
    elif kind == "unknown_type":
        bad["type"] = _UNKNOWN_TYPES[int(rng.random() * len(_UNKNOWN_TYPES))]
    else:
        bad["schema_version"] = (2, 0, "1", 1.5)[int(rng.random() * 4)]
    return orjson.dumps(bad)


def keyed(spec: SampleSpec) -> Iterator[tuple[bytes | None, bytes]]:
    """(Kafka key, line) pairs; the key is the customer id, recovered from the line for malformed ones."""
    population = OrderHistory if spec.profile == "order-history" else Simulation
    simulation = population(
        customers=spec.customers,
        days=spec.days,
        start=spec.start,
        seed=spec.seed,
        currency=spec.currency,
        currency_exponent=CURRENCY_EXPONENT[spec.currency],
        erasure_share=spec.erasure_share,
    )
    # Malformed lines come in addition to valid ones: inserting with probability q = p / (1 - p) after each
    # valid event makes their expected share of all lines p. Their own Random keeps the valid stream fixed.
    share = spec.malformed_share
    q = share / (1.0 - share)
    draw = random.Random(f"{spec.seed}-malformed").random if q else None
    bad_rng = random.Random(f"{spec.seed}-malformed-kind")
    dumps = orjson.dumps
    remaining = spec.limit if spec.limit is not None else -1
    serial = 0
    for customer_id, event in simulation.events():
        if remaining == 0:
            return
        line = dumps(event)
        yield customer_id.encode(), line
        remaining -= 1
        if draw is not None and draw() < q and remaining != 0:
            serial += 1
            kind = MALFORMED_KINDS[int(bad_rng.random() * len(MALFORMED_KINDS))]
            bad = malformed_line(kind, event, line, bad_rng, serial)
            key = recover_customer_id(bad)
            yield (key.encode() if key is not None else None), bad
            remaining -= 1


def generate(spec: SampleSpec) -> Iterator[bytes]:
    """JSON lines (without newline) sorted by ``occurred_at``; streamed, never held in memory."""
    return map(itemgetter(1), keyed(spec))  # map/itemgetter: no extra Python frame per line


def write_jsonl(spec: SampleSpec, path: Path) -> int:
    """Write one event per line; a ``.gz`` path is gzip-compressed (mtime 0: same spec, same bytes)."""
    count = 0
    buffer: list[bytes] = []
    with path.open("wb") as raw:
        sink: Any = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if path.suffix == ".gz" else raw
        )
        try:
            for line in generate(spec):
                buffer.append(line)
                if len(buffer) >= _WRITE_CHUNK:
                    sink.write(b"\n".join(buffer) + b"\n")
                    count += len(buffer)
                    buffer.clear()
            if buffer:
                sink.write(b"\n".join(buffer) + b"\n")
                count += len(buffer)
        finally:
            if sink is not raw:
                sink.close()
    return count


def days_into(spec: SampleSpec, line: bytes) -> float | None:
    """How far into the sample's period an event line is (lines come in event-time order, so this is the
    progress of a run): days since ``spec.start``; None for a line without a readable time (malformed)."""
    try:
        at = datetime.fromisoformat(orjson.loads(line)["occurred_at"])
        return (at - spec.start).total_seconds() / 86_400
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        return None


async def produce(
    spec: SampleSpec,
    bootstrap: str,
    topic: str,
    sent: Callable[[int, bytes], None] | None = None,
    **kafka_security_kwargs: Any,
) -> int:
    """Send the sample to ``topic``, keyed by customer id so each customer stays in one partition, in order.
    ``sent(count, last line)`` is told after each acknowledged chunk (a progress bar, see ``days_into``).

    acks=all with idempotence: a retried batch is neither lost nor duplicated, nor reordered. Sends are
    awaited in chunks (not one by one) so the producer can batch; extra keyword arguments go to
    :class:`aiokafka.AIOKafkaProducer` (``security_protocol``, ``sasl_mechanism``, ``ssl_context``, ...).
    """
    from aiokafka import AIOKafkaProducer

    options: dict[str, Any] = {"linger_ms": 5, "max_batch_size": 256 * 1024, **kafka_security_kwargs}
    options.update(acks="all", enable_idempotence=True)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **options)
    await producer.start()
    count = 0
    try:
        pending: list[asyncio.Future[Any]] = []
        for key, line in keyed(spec):
            pending.append(await producer.send(topic, line, key=key))
            if len(pending) >= _SEND_CHUNK:
                await asyncio.gather(*pending)
                count += len(pending)
                pending.clear()
                if sent is not None:
                    sent(count, line)
        await asyncio.gather(*pending)
        count += len(pending)
        await producer.flush()
    finally:
        await producer.stop()
    return count
