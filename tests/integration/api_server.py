"""A real `python -m streams.read.api` process over HTTPS, with API keys, fed by the real worker: what the
security tests (tests/integration/test_api_security.py) talk to."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from segmentation import Definitions
from streams.devstack.certs import Certs
from streams.read.auth import new_key
from streams.settings import Settings
from tests.integration.test_worker_history import ev, purchase
from tests.integration.worker_harness import applied_offsets, customer_key, produce, run_worker_until

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Declared data of the customers below: none of these values may appear in a `why`.
DECLARED = {"p1": (1984, "FR", "female", 3), "p2": (1951, "SE", "male", 1), "p3": (2001, "US", "other", 2)}
KEY_SCOPES = {
    "seg": ["segments:read"],
    "prof": ["profiles:read"],
    "members": ["members:read"],
    "pii": ["profiles:read", "pii:read"],
    "all": ["segments:read", "profiles:read", "members:read", "pii:read", "metrics:read"],
}
EXTRA_AUDIENCE = "  french_elders: 'region == \"FR\" and birth_year < 1990 and orders >= 1'\n"


def events() -> list[bytes]:
    lines: list[bytes] = []
    for n, (cid, (year, region, gender, household)) in enumerate(DECLARED.items()):
        at = T0 + timedelta(days=n)
        lines.append(ev(f"{cid}-u", "profile_update", cid, at, birth_year=year, region=region, gender=gender,
                        household=household))  # fmt: skip
        lines.append(purchase(f"{cid}-o1", cid, at + timedelta(hours=1), amount="80.00"))
        lines.append(purchase(f"{cid}-o2", cid, at + timedelta(days=3), amount="25.00", channel="app"))
    lines += [purchase(f"x{i}-o", f"x{i}", T0 + timedelta(hours=i)) for i in range(40)]
    return lines


def definitions_file(directory: Path) -> Path:
    """The default definitions plus an audience on declared data (its `why` must not quote the values)."""
    text = (Path(__file__).parents[2] / "segmentation" / "definitions.yaml").read_text(encoding="utf-8")
    text = text.replace("audiences:\n", "audiences:\n" + EXTRA_AUDIENCE, 1)
    path = directory / "definitions.yaml"
    path.write_text(text, encoding="utf-8")
    assert "french_elders" in {r.name for r in Definitions.from_yaml(path).audiences}
    return path


def feed(settings: Settings) -> int:
    """Events in, worker run until all are applied; the number of events."""
    lines = events()

    async def run() -> None:
        await produce(settings, lines, customer_key)
        await run_worker_until(
            settings, lambda: sum((o or -1) + 1 for o in applied_offsets(settings).values()) == len(lines)
        )

    asyncio.run(run())
    return len(lines)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Api:
    base: str
    tokens: dict[str, str]
    ssl: ssl.SSLContext
    ca: Path
    process: subprocess.Popen[bytes]

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@contextmanager
def serve(settings: Settings, certs: Certs, extra_args: Sequence[str] = ()) -> Iterator[Api]:
    tokens: dict[str, str] = {}
    lines: list[str] = []
    for name, scopes in KEY_SCOPES.items():
        tokens[name], line = new_key(name, scopes)
        lines.append(line)
    port = free_port()
    env = settings.as_environment()
    env.update(
        SEGSTREAM_API_KEYS=";".join(lines),
        SEGSTREAM_API_TLS_CERTFILE=str(certs.cert),
        SEGSTREAM_API_TLS_KEYFILE=str(certs.key),
    )
    log = (certs.ca.parent / "api.log").open("wb")  # a file, not a pipe nobody drains
    process = subprocess.Popen(
        [sys.executable, "-m", "streams.read.api", "--host", "127.0.0.1", "--port", str(port), *extra_args],
        env=env,
        stdout=log,
        stderr=log,
    )
    context = ssl.create_default_context(cafile=str(certs.ca))
    api = Api(f"https://127.0.0.1:{port}", tokens, context, certs.ca, process)
    try:
        _wait_healthy(api)
        yield api
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _wait_healthy(api: Api) -> None:
    import urllib.request

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if api.process.poll() is not None:
            raise AssertionError(f"API exited: {(api.ca.parent / 'api.log').read_text()}")
        try:
            with urllib.request.urlopen(api.base + "/health", context=api.ssl, timeout=1) as resp:
                if orjson.loads(resp.read())["status"] == "ok":
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("API did not become healthy")
