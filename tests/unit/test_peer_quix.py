"""The quixstreams peer must do the job segstream does, or the comparison compares different work: the same
transitions from the same events, state carried between events, bad records dead-lettered, never dropped."""

from __future__ import annotations

from base64 import b64decode
from typing import Any

import orjson

from benchmarks.peer_quix import SLOT, Output, segment
from segmentation import CustomerState, Definitions, apply, parse_event
from segmentation.state_codec import unpack_state
from streams.topics.envelope import transition_event
from streams.worker.batch import Record

DEFINITIONS = Definitions.default()


class DictState:
    """quixstreams' per-key `State`, as a dict."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value


def event(n: int, kind: str = "purchase", **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "type": kind,
        "event_id": f"e{n}",
        "customer_id": "c1",
        "occurred_at": f"2026-03-0{n}T10:00:00Z",
        "schema_version": 1,
    }
    if kind == "purchase":
        body |= {"order_id": f"o{n}", "amount": "25.00", "currency": "EUR", "channel": "web"}
    return orjson.dumps(body | extra)


def record(value: bytes | None, offset: int = 0, key: bytes | None = b"c1") -> Record:
    return Record("events", 2, offset, key, value)


def test_each_event_gives_the_cores_transitions_and_the_state_carries_to_the_next() -> None:
    state = DictState()
    expected_state = CustomerState.new("c1")
    for n in (1, 2, 3):
        out = segment(record(event(n), n), state, DEFINITIONS)
        outcome = apply(expected_state, parse_event(event(n)), DEFINITIONS)
        expected_state = outcome.state
        assert out == [Output(transition_event(t), [], False) for t in outcome.transitions]
        assert unpack_state(b64decode(state.data[SLOT])) == expected_state
    assert segment(record(event(1), 4), state, DEFINITIONS) == []  # a duplicate event id changes nothing


def test_a_first_purchase_moves_the_customer_into_segments() -> None:
    out = segment(record(event(1)), DictState(), DEFINITIONS)
    assert out and all(not o.dead for o in out)
    assert {orjson.loads(o.value or b"")["data"]["cause"] for o in out} == {"e1"}


def test_bad_records_are_dead_letters_with_their_origin_and_leave_the_state_alone() -> None:
    state = DictState()
    (not_json,) = segment(record(b"{oops", 7), state, DEFINITIONS)
    (wrong_key,) = segment(record(event(1), 8, key=b"c2"), state, DEFINITIONS)
    (rejected,) = segment(record(event(1, amount="999999999999.00"), 9), state, DEFINITIONS)
    for letter, offset in ((not_json, b"7"), (wrong_key, b"8"), (rejected, b"9")):
        headers = dict(letter.headers)
        assert letter.dead
        assert headers["__connect.errors.topic"] == b"events"
        assert headers["__connect.errors.partition"] == b"2"
        assert headers["__connect.errors.offset"] == offset
    assert not_json.value == b"{oops"
    assert dict(not_json.headers)["__connect.errors.stage"] == b"parse"
    assert dict(rejected.headers)["__connect.errors.stage"] == b"apply"  # the core refused it
    assert dict(rejected.headers)["__connect.errors.exception.class.name"].endswith(b"AmountAboveLimit")
    assert b"c2" in dict(wrong_key.headers)["__connect.errors.exception.message"]
    assert state.data == {}
