"""A minimal Faust app for the smoke test: copies each message's value into a Redis list."""

from __future__ import annotations

import os

import faust

from streams.store.connection import sync_client

app = faust.App(
    os.environ["SMOKE_APP_ID"],
    broker=f"kafka://{os.environ['SMOKE_BOOTSTRAP']}",
    datadir=os.environ["SMOKE_DATADIR"],
    web_enabled=False,
    topic_partitions=1,
)
source = app.topic(os.environ["SMOKE_TOPIC"], value_type=bytes, value_serializer="raw")
sink = sync_client(os.environ["SMOKE_REDIS_URL"])


@app.agent(source)
async def copy(stream: faust.StreamT[bytes]) -> None:
    async for value in stream:
        sink.rpush(os.environ["SMOKE_KEY"], value)
