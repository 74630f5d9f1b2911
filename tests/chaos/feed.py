"""The generated log, laid out as a fresh topic holds it, hostile records, and a throttled producer."""

from __future__ import annotations

import asyncio
import gzip
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from segmentation import parse_event
from streams.replay.sources import NO_KEY_PARTITION, FileSource
from streams.sample import generator as sample
from streams.store.partitioning import partition_for

MAX_MESSAGE_BYTES = 1_048_588  # the broker's default max.message.bytes (the topics keep it)


@dataclass(frozen=True)
class Line:
    partition: int
    key: bytes | None
    value: bytes
    hostile: str = ""  # what is wrong with it, for hostile records (not in the file)


@dataclass
class Log:
    """The file `segstream replay` reads and the records the topic must hold, partition and offset each."""

    path: Path
    records: list[Line]
    partitions: int
    ends: dict[int, int] = field(default_factory=dict)  # partition -> records (end offset) once fed

    @classmethod
    def generate(cls, spec: sample.SampleSpec, path: Path, partitions: int) -> Log:
        sample.write_jsonl(spec, path)
        _close_every_partition(path, partitions)
        records = []
        for _, customer_id, line in FileSource(path, partitions).keyed():
            # A fresh topic fed with this file in order gives the offsets the replay assigns (its sources
            # module): partition by customer id, a line without one in partition 0.
            p = NO_KEY_PARTITION if customer_id is None else partition_for(customer_id, partitions)
            records.append(Line(p, None if customer_id is None else customer_id.encode(), line))
        log = cls(path, records, partitions)
        log.ends = log.count()
        return log

    def count(self) -> dict[int, int]:
        ends = dict.fromkeys(range(self.partitions), 0)
        for r in self.records:
            ends[r.partition] += 1
        return ends

    def add_hostile(self) -> list[tuple[int, int, str]]:
        """Append the hostile records of the issue (after the log, so the file's offsets hold) and return
        their (partition, offset, kind). Intended behaviour: each is a dead letter and nothing else moves."""
        valid = [orjson.loads(r.value) for r in self.records if r.key is not None and _valid_json(r.value)]
        first = valid[0]
        victim = str(first["customer_id"])
        other = next(
            str(v["customer_id"])
            for v in valid
            if partition_for(str(v["customer_id"]), self.partitions) != partition_for(victim, self.partitions)
        )
        last_time = max(str(v["occurred_at"]) for v in valid)  # inside the log's time range
        base = {"customer_id": victim, "schema_version": 1}

        def purchase(event_id: str, at: str, amount: str) -> dict[str, object]:
            return {
                **base,
                "type": "purchase",
                "event_id": event_id,
                "occurred_at": at,
                "order_id": f"o-{event_id}",
                "amount": amount,
                "currency": "EUR",
                "channel": "web",
            }

        hostile: list[tuple[str, str, dict[str, object]]] = [
            # Replay mode (the suite's) applies any date after the definitions' earliest one; the live
            # worker's wall-clock skew rule is tested in tests/integration/test_worker_hostile_input.py.
            ("too_early", victim, purchase("hostile-too-early", "0001-01-01T00:00:00Z", "10.00")),
            ("foreign_key", other, purchase("hostile-foreign-key", last_time, "10.00")),
        ]
        hostile += [
            ("huge_amount", victim, purchase(f"hostile-huge-{i}", last_time, "999999999999999.99"))
            for i in range(1, 96)
        ]
        big = {**base, "type": "web_visit", "event_id": "hostile-big", "occurred_at": last_time, "page": ""}
        pad = MAX_MESSAGE_BYTES - 600 - len(orjson.dumps(big))  # the record batch must still fit the topic
        big["page"] = "/" + "x" * pad
        hostile.append(("near_max_size", victim, big))
        ends = self.count()
        out = []
        for kind, key, event in hostile:
            p = partition_for(key, self.partitions)
            out.append((p, ends[p], kind))
            ends[p] += 1
            self.records.append(Line(p, key.encode(), orjson.dumps(event), hostile=kind))
        self.ends = ends
        return out


def _valid_json(value: bytes) -> bool:
    try:
        parse_event(value)
    except Exception:  # any reason the worker would dead-letter it
        return False
    return True


class Feeder:
    """Produces the log's records to their partitions at `rate` records/s; `pause()` waits until every
    record sent so far is acknowledged (so a broker kill never makes the producer resend: the topic must
    hold exactly the file's layout)."""

    def __init__(self, bootstrap: str, topic: str, records: list[Line], rate: float) -> None:
        self.bootstrap, self.topic, self.records, self.rate = bootstrap, topic, records, rate
        self.sent = 0
        self._bonus = 0
        self._go = asyncio.Event()
        self._go.set()
        self._parked = asyncio.Event()

    @property
    def share(self) -> float:
        return self.sent / max(1, len(self.records))

    async def until(self, share: float, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.share < share and self.sent < len(self.records):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the feed did not reach {share:.0%}")
            await asyncio.sleep(0.02)

    def burst(self, records: int) -> None:
        """Send `records` more at once, on top of the rate: the workers then have a backlog, so a fault
        right after lands in the middle of batches (between publish and commit), not on an idle worker."""
        self._bonus += records

    async def pause(self) -> None:
        self._go.clear()
        await self._parked.wait()

    def resume(self) -> None:
        self._parked.clear()
        self._go.set()

    async def run(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_request_size=4 << 20,
            request_timeout_ms=120_000,
        )
        await producer.start()
        pending: list[asyncio.Future[object]] = []
        try:
            last = time.monotonic()
            credit = 0.0
            while self.sent < len(self.records):
                if not self._go.is_set():
                    await asyncio.gather(*pending)
                    pending.clear()
                    self._parked.set()
                    await self._go.wait()
                    last = time.monotonic()
                await asyncio.sleep(0.02)
                now = time.monotonic()
                credit += min(0.2, now - last) * self.rate + self._bonus
                self._bonus = 0
                last = now
                while credit >= 1 and self.sent < len(self.records) and self._go.is_set():
                    r = self.records[self.sent]
                    pending.append(await producer.send(self.topic, r.value, key=r.key, partition=r.partition))
                    self.sent += 1
                    credit -= 1
                if len(pending) >= 500:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
            self._parked.set()
        finally:
            await producer.stop()


def _close_every_partition(path: Path, partitions: int) -> None:
    """End the file with one web visit per partition at the log's last instant (a customer of its own).

    A replay sweeps every partition to the end of the whole log; a worker can only sweep a partition to its
    own watermark (it never knows how far the other partitions' logs go). With these, every partition's
    watermark ends at the log's end in both, so the comparison checks effects, not that known difference.
    """
    with gzip.open(path, "rb") as f:
        end = max(parse_event(line).occurred_at for line in f if _valid_json(line)).isoformat()
    lines = []
    for p in range(partitions):
        cid = next(
            f"clock-{p}-{k}" for k in range(10_000) if partition_for(f"clock-{p}-{k}", partitions) == p
        )
        event = {
            "customer_id": cid,
            "schema_version": 1,
            "type": "web_visit",
            "event_id": f"close-{p}",
            "occurred_at": end,
            "page": "/",
        }
        lines.append(orjson.dumps(event) + b"\n")
    with gzip.open(path, "ab") as f:
        f.writelines(lines)
