"""The HTTP API's request gate (the bound on Redis use a cluster's client needs, streams/read/http_guard.py)
against real Redis (single server or cluster), on an in-process API with a one-slot gate: a caller without a
valid key is answered 401 at once however busy the gate, and a streamed export whose reader has stopped
reading holds no slot, so other requests are still served meanwhile."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
import pytest
from aiohttp import web

from streams.read import SegmentReader
from streams.read.api import make_app
from streams.read.auth import Authenticator, new_key, parse_keys
from streams.read.http_guard import GATE, RequestGate
from streams.settings import Settings
from streams.store.connection import sync_client
from tests.integration.replay_helpers import replay_file
from tests.integration.test_worker_history import purchase
from tests.services import Services

pytestmark = pytest.mark.cluster
MEMBERS = 6000  # JSON lines of ~150 bytes: ~0.9 MB, far more than the socket buffers set below can hold
WAIT_S = 0.5  # the gate's wait: a request that finds no slot in time is answered 503
SMALL_BUFFER = (
    4096  # SO_SNDBUF of the API's sockets, SO_RCVBUF of the slow reader's: bytes in flight stay few
)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def settings(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """MEMBERS customers with one purchase each (all lifecycle `new`), replayed into a private namespace."""
    unique = uuid.uuid4().hex[:12]
    s = Settings(
        redis_url=services.redis_url,
        key_prefix=f"test:{unique}",
        namespace="gate",
        events_topic=f"test-{unique}-events",
    )
    directory = tmp_path_factory.mktemp("gate")
    events = directory / "events.jsonl"
    events.write_bytes(
        b"\n".join(purchase(f"e{i}", f"c{i:05d}", T0 + timedelta(seconds=i)) for i in range(MEMBERS)) + b"\n"
    )
    try:
        summary = asyncio.run(replay_file(s, events, "gate", directory))
        assert summary.customers == MEMBERS
        yield s
    finally:
        client = sync_client(services.redis_url)
        for key in list(client.scan_iter(match=f"test:{unique}:*", count=1000)):
            client.delete(key)
        client.close()


@asynccontextmanager
async def api(settings: Settings, auth: Authenticator) -> AsyncIterator[tuple[web.Application, str]]:
    """The app with a one-slot gate (on a single server too: the gate is what is tested), served on a
    socket whose send buffer is small, so a reader that stops reading soon stops the export's writes."""
    reader = await SegmentReader.connect(settings)
    app = make_app(reader, auth, close_reader=True)
    app[GATE] = RequestGate(1, WAIT_S)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)  # accepted sockets inherit it
    listener.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, listener)
    await site.start()
    try:
        yield app, f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        await runner.cleanup()


async def get(base: str, path: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(base + path, headers=headers) as resp:
        await resp.read()
        return resp.status


def test_a_request_without_a_valid_key_is_answered_401_while_the_gate_is_full(settings: Settings) -> None:
    token, line = new_key("ops", ["segments:read"])

    async def run() -> tuple[int, int, int]:
        async with api(settings, Authenticator(parse_keys(line))) as (app, base):
            await app[GATE].slots.acquire()  # the one slot, held: as by a request that takes long
            try:
                no_key = await get(base, "/grids/lifecycle/segments")
                bad_key = await get(base, "/grids/lifecycle/segments", "sgk_not-a-key")
                good_key = await get(base, "/grids/lifecycle/segments", token)  # waits WAIT_S, then 503
            finally:
                app[GATE].slots.release()
            return no_key, bad_key, good_key

    assert asyncio.run(run()) == (401, 401, 503)


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    """The body of a chunked HTTP/1.1 response whose headers were read already."""
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        body += await reader.readexactly(size) if size else b""
        await reader.readline()  # the CRLF after the chunk (after the last one: the empty trailer line)
        if size == 0:
            return bytes(body)


def test_other_requests_are_served_while_a_streamed_export_is_read_slowly(settings: Settings) -> None:
    """The export's reader reads the headers and stops (a small receive buffer: the server's writes stop
    too); with the gate's one slot held for the whole export, the next request would wait WAIT_S, then 503."""

    async def run() -> tuple[int, int, bytes]:
        async with api(settings, Authenticator.disabled()) as (_, base):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)  # before connect: the window
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", int(base.rsplit(":", 1)[1])))
            reader, writer = await asyncio.open_connection(sock=sock, limit=SMALL_BUFFER)
            writer.write(
                b"GET /grids/lifecycle/segments/new/export?format=jsonl HTTP/1.1\r\n"
                b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
            )
            head = await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(0.5)  # the export writes until every buffer on the way is full
            other = await asyncio.wait_for(get(base, "/grids/lifecycle/segments"), 10)
            another = await asyncio.wait_for(get(base, "/customers/c00042"), 10)
            body = await asyncio.wait_for(read_chunked(reader), 60)
            writer.close()
            return other, another, head.split(b"\r\n", 1)[0] + b"\n" + body

    other, another, answer = asyncio.run(run())
    status, body = answer.split(b"\n", 1)
    assert (other, another, status) == (200, 200, b"HTTP/1.1 200 OK")
    rows = [orjson.loads(line) for line in body.splitlines()]
    assert len(body) > 20 * SMALL_BUFFER + 2 * 65536  # far beyond the sockets' and asyncio's write buffers
    assert sorted(row["customer_id"] for row in rows) == [f"c{i:05d}" for i in range(MEMBERS)]


def test_a_streamed_export_waits_for_the_gate_before_its_first_byte(settings: Settings) -> None:
    """The export takes its slots itself: with the slot held, it is answered 503 like any request, not run
    outside the bound on Redis connections."""

    async def run() -> int:
        async with api(settings, Authenticator.disabled()) as (app, base):
            await app[GATE].slots.acquire()
            try:
                return await get(base, "/grids/lifecycle/segments/new/export?format=jsonl")
            finally:
                app[GATE].slots.release()

    assert asyncio.run(run()) == 503


def test_the_export_is_unchanged_by_the_gate(settings: Settings) -> None:
    """The same bytes with and without a gate (the per-step slots change when Redis is used, not what)."""

    async def run() -> tuple[bytes, bytes]:
        path = "/grids/lifecycle/segments/new/export?format=csv"
        bodies = []
        for gated in (True, False):
            reader = await SegmentReader.connect(settings)
            app = make_app(reader, Authenticator.disabled(), close_reader=True)
            if gated:
                app[GATE] = RequestGate(1, WAIT_S)
            elif GATE in app:
                del app[GATE]
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"http://127.0.0.1:{runner.addresses[0][1]}{path}") as resp,
                ):
                    bodies.append(await resp.read())
            finally:
                await runner.cleanup()
        return bodies[0], bodies[1]

    with_gate, without = asyncio.run(run())
    assert with_gate == without and with_gate.count(b"\n") == MEMBERS + 1
