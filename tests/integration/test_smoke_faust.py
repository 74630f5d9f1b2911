"""faust-streaming works with this Kafka version: one message, end to end, through a real worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaProducer

from streams.store.connection import sync_client
from tests.services import Services


def test_faust_agent_processes_one_message(
    services: Services, topic_name: Callable[[str], str], redis_prefix: str, tmp_path: Path
) -> None:
    topic, key = topic_name("faust"), f"{redis_prefix}faust-out"
    env = {
        **os.environ,
        "SMOKE_APP_ID": topic_name("app"),
        "SMOKE_BOOTSTRAP": services.kafka_bootstrap,
        "SMOKE_DATADIR": str(tmp_path / "faust"),
        "SMOKE_TOPIC": topic,
        "SMOKE_REDIS_URL": services.redis_url,
        "SMOKE_KEY": key,
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "faust", "-A", "tests.integration.faust_smoke_app", "worker", "-l", "warn"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = sync_client(services.redis_url)
    try:
        producer = KafkaProducer(bootstrap_servers=services.kafka_bootstrap, acks="all")
        producer.send(topic, b"hello-faust")
        producer.flush()
        producer.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and client.llen(key) == 0:
            assert worker.poll() is None, worker.stdout.read().decode() if worker.stdout else "worker died"
            time.sleep(0.2)
        assert client.lrange(key, 0, -1) == [b"hello-faust"]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        client.close()
