"""The API says where it listens, once the port is open (issue 17, item 2): the line's address answers."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable

from tests.integration.cli_process import cli_process
from tests.integration.worker_harness import make_settings
from tests.services import Services


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_api_logs_listening_on_its_address_in_json(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str
) -> None:
    settings = make_settings(services, topic_name, redis_prefix)
    port = free_port()
    argv = ["--log-format", "json", "api", "--no-auth", "--port", str(port)]
    with cli_process(settings, argv) as (proc, lines):
        deadline = time.monotonic() + 30
        while not any("listening on" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, lines
            time.sleep(0.05)
        record = json.loads(next(line for line in lines if "listening on" in line))
        assert record["message"] == f"listening on http://127.0.0.1:{port}"
        assert record["level"] == "INFO" and record["logger"] == "segstream.api"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            assert answer.status == 200  # the address in the line is the one serving
