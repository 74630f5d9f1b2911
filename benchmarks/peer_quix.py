"""The peer: the same job written the way a quixstreams user would, for benchmarks/bench_peers.py.

Same events, segstream's decoder and pure core, applied in a stateful `apply` whose state lives in
quixstreams' RocksDB store (changelog topic on, the default); transitions and dead letters are produced to
topics by `to_topic`. Defaults everywhere else (at-least-once, commit every 5 s), as a user would start.

Run as a process: `python -m benchmarks.peer_quix` with BENCH_BOOTSTRAP, BENCH_TOPIC, BENCH_TRANSITIONS,
BENCH_DLQ, BENCH_GROUP, BENCH_STATE_DIR and BENCH_EVENTS (stop after that many events). It prints
`first <time>` when it applies its first event and `done <events> <first> <end>` once the last one is
flushed and committed (quixstreams' final checkpoint), so the benchmark times the same window as for the
other jobs. Needs the optional extra: pip install -e '.[bench-peer]'.
"""

from __future__ import annotations

import os
import time
from base64 import b64decode, b64encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from segmentation import CustomerState, Definitions, apply
from segmentation.state_codec import pack_state, unpack_state
from streams.settings import Settings
from streams.topics.deadletter import DeadLetter
from streams.topics.envelope import transition_event
from streams.worker.batch import Record, decode

DLQ_MAX_VALUE_BYTES: int = Settings.model_fields["dlq_max_value_bytes"].default  # the worker's default
SLOT = "customer"
"""The state key: quixstreams scopes state by message key (the customer id), so one slot is the state: the
packed state as segstream stores it (`segmentation.state_codec`), base64 for quixstreams' JSON serialiser."""


class Slot(Protocol):
    """What the job needs of quixstreams' `State` (a dict-backed one in the unit tests)."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class Output:
    """One record to produce: a transition envelope, or a dead letter (with Kafka Connect headers)."""

    value: bytes | None
    headers: list[tuple[str, bytes]]
    dead: bool


def segment(record: Record, state: Slot, definitions: Definitions) -> list[Output]:
    """One event through segstream's decoder and core against the customer's stored state: the records to
    produce. A bad record or an event the core rejects is a dead letter and leaves the state as it was."""
    events, dead = decode([record])
    if dead:
        return [_dead(dead[0])]
    event = events[0][1]
    stored = state.get(SLOT)
    current = unpack_state(b64decode(stored)) if stored else CustomerState.new(event.customer_id)
    try:
        outcome = apply(current, event, definitions)
    except Exception as exc:  # as the worker: any failure of the core for one event is a dead letter
        return [
            _dead(
                DeadLetter(
                    record.topic, record.partition, record.offset, record.key, record.value, exc, "apply"
                )
            )
        ]
    state.set(SLOT, b64encode(pack_state(outcome.state)).decode("ascii"))
    return [Output(transition_event(t), [], False) for t in outcome.transitions]


def _dead(letter: DeadLetter) -> Output:
    _, value, headers = letter.record(DLQ_MAX_VALUE_BYTES)
    return Output(value, headers, True)


def main() -> None:  # pragma: no cover - runs in the benchmark's child process (tests/integration)
    from quixstreams import Application, State, message_context
    from quixstreams.models import Topic
    from quixstreams.models.serializers import Serializer

    class OutputValue(Serializer):  # type: ignore[misc,unused-ignore]  # Any where quixstreams is absent
        """The bytes of an `Output`: its topic is chosen from it first (`to_topic` with a callable)."""

        def __call__(self, value: Output, ctx: object) -> bytes:
            return value.value or b""

    env = os.environ
    target = int(env["BENCH_EVENTS"])
    app = Application(
        broker_address=env["BENCH_BOOTSTRAP"],
        consumer_group=env["BENCH_GROUP"],
        auto_offset_reset="earliest",
        state_dir=env["BENCH_STATE_DIR"],
        loglevel="WARNING",
    )
    events = app.topic(env["BENCH_TOPIC"], key_deserializer="bytes", value_deserializer="bytes")
    transitions = app.topic(env["BENCH_TRANSITIONS"], key_serializer="bytes", value_serializer=OutputValue())
    dlq = app.topic(env["BENCH_DLQ"], key_serializer="bytes", value_serializer=OutputValue())
    definitions = Definitions.default()
    seen = Progress(target, app.stop)

    def job(
        value: bytes | None, key: bytes | None, timestamp: int, headers: Any, state: State[str, Any]
    ) -> list[Output]:
        ctx = message_context()
        seen.tick()
        return segment(Record(ctx.topic, ctx.partition, ctx.offset, key, value), state, definitions)

    def route(value: Output, key: Any, timestamp: int, headers: Any) -> Topic:
        return dlq if value.dead else transitions

    sdf = app.dataframe(events)
    sdf = sdf.apply(job, stateful=True, expand=True, metadata=True)
    sdf = sdf.set_headers(lambda value, key, timestamp, headers: value.headers)
    sdf.to_topic(route)
    app.run()  # returns after app.stop(): the last checkpoint (produce, flush, commit) is done by then
    print(f"done {seen.count} {seen.first} {time.time()}", flush=True)


class Progress:
    """Counts events; announces the first on stdout and stops the application at the target."""

    def __init__(self, target: int, stop: Callable[[], None]) -> None:
        self.target, self.stop, self.count, self.first = target, stop, 0, 0.0

    def tick(self) -> None:
        self.count += 1
        if self.count == 1:
            self.first = time.time()
            print(f"first {self.first}", flush=True)
        if self.count == self.target:
            self.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
