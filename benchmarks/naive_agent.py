"""The baseline: a textbook Faust agent, one event at a time, one Redis round trip per event.

Same pure core and the same Redis hash as the real worker, so the comparison measures the per-event path
only. Progress goes to `<prefix>:bench` (count, first and last processing time) for the benchmark to read.
"""

from __future__ import annotations

import os
import time
from typing import Any, cast

import faust

from segmentation import CustomerState, Definitions, InvalidEvent, apply, parse_event
from segmentation.state_mapping import state_from_mapping, state_to_mapping
from streams.store.connection import async_client
from streams.topics.envelope import transition_event

PREFIX = os.environ["BENCH_PREFIX"]
app = faust.App(
    os.environ["BENCH_APP_ID"],
    broker=f"kafka://{os.environ['BENCH_BOOTSTRAP']}",
    datadir=os.environ["BENCH_DATADIR"],
    web_enabled=False,
    producer_acks=-1,
)
events = app.topic(os.environ["BENCH_TOPIC"], value_type=bytes, value_serializer="raw")
transitions = app.topic(os.environ["BENCH_TRANSITIONS"], value_type=bytes, value_serializer="raw")
definitions = Definitions.default()
state: dict[str, Any] = {}


@app.agent(events)
async def segment(stream: faust.StreamT[bytes]) -> None:
    r = async_client(os.environ["BENCH_REDIS_URL"], decode_responses=True, encoding_errors="surrogateescape")
    progress = f"{PREFIX}:bench"
    async for value in stream:
        now = str(time.time())
        if "first" not in state:
            state["first"] = now
            await r.hset(progress, "first", now)
        async with r.pipeline(transaction=False) as pipe:
            try:
                event = parse_event(value)
            except InvalidEvent:
                pipe.hincrby(progress, "dead", 1)
            else:
                key = f"{PREFIX}:c:{event.customer_id}"
                row = cast(dict[str, str], await r.hgetall(key))
                current = state_from_mapping(row) if row else CustomerState.new(event.customer_id)
                outcome = apply(current, event, definitions)
                mapping = state_to_mapping(outcome.state)  # `state` is bytes as text (surrogateescape)
                stale = [k for k in row if k not in mapping]  # absent now (an answer `not_member`, ...)
                if stale:
                    pipe.hdel(key, *stale)
                pipe.hset(key, mapping={k: v.encode("utf-8", "surrogateescape") for k, v in mapping.items()})
                for t in outcome.transitions:
                    await transitions.send(key=t.customer_id.encode(), value=transition_event(t))
            pipe.hincrby(progress, "count", 1)
            pipe.hset(progress, "last", str(time.time()))
            await pipe.execute()
