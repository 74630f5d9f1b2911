"""Apache Kafka in KRaft mode from the official Maven Central jars: resolve, format once, start, wait."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from streams.devstack.config import POM, StackConfig, kafka_version
from streams.devstack.config import StackError as StackError  # its home before config.py parsed ports
from streams.devstack.process import alive, mark_start, read_pid, since_start, spawn

LOG4J2 = """\
status = error
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


SINGLE_NODE = (
    "num.partitions=4",
    "offsets.topic.replication.factor=1",
    "offsets.topic.num.partitions=4",
    "transaction.state.log.replication.factor=1",
    "transaction.state.log.min.isr=1",
    "share.coordinator.state.topic.replication.factor=1",
    "share.coordinator.state.topic.min.isr=1",
    "group.initial.rebalance.delay.ms=0",
)
"""Broker settings of a one-node cluster (internal topics with one replica); the secure broker shares them."""


def new_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A KRaft cluster id that never starts with "-", which kafka-storage would parse as an option.

    Kafka's own Uuid.randomUuid() redraws for the same reason; a plain base64 draw failed ~1 format in 64.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def libs_dir(cfg: StackConfig) -> Path:
    return cfg.kafka_dir / f"libs-{kafka_version()}"


def resolve_jars(cfg: StackConfig) -> Path:
    """Copy the broker and its runtime dependencies from Maven (cached in ~/.m2) once per version."""
    # Checked before the jars are found in place too: every caller runs `java` next (a FileNotFoundError
    # traceback when a checkout's .devstack outlived the JDK or PATH lacks it).
    if shutil.which("java") is None:
        raise StackError(
            "Java is not on PATH: Kafka 4 needs Java 17+ (Debian: apt-get install openjdk-17-jre)"
        )
    target = libs_dir(cfg)
    done = target / ".complete"
    if done.exists() and not _damaged_jars(target):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) is not on PATH: install it (Debian: apt-get install maven)")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={target}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"Maven could not resolve Kafka {kafka_version()}:\n{result.stdout}{result.stderr}")
    if damaged := _damaged_jars(target):
        names = ", ".join(jar.name for jar in damaged)
        raise StackError(
            f"Maven's cache holds damaged jars ({names}): delete them under ~/.m2/repository and run up again"
        )
    done.write_text(kafka_version())
    return target


def _damaged_jars(libs: Path) -> list[Path]:
    """Jars that are not whole zip files (a disk that filled up, a copy cut short): with one, the broker did
    not start ("Could not find or load main class kafka.Kafka") on every `up` until someone found the folder
    to delete, since `.complete` said the copy was done. Reading each central directory takes milliseconds."""
    damaged = []
    for jar in sorted(libs.glob("*.jar")):
        try:
            with zipfile.ZipFile(jar):
                pass
        except (zipfile.BadZipFile, OSError):
            damaged.append(jar)
    return damaged


def properties(cfg: StackConfig) -> str:
    data = cfg.kafka_dir / "data"
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{cfg.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{cfg.kafka_port},CONTROLLER://127.0.0.1:{cfg.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{cfg.kafka_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data}",
            *SINGLE_NODE,
            "auto.create.topics.enable=true",
            "log.retention.hours=168",
            "",
        ]
    )


def _java(cfg: StackConfig, libs: Path, *args: str) -> list[str]:
    return [
        "java",
        f"-Xmx{cfg.kafka_heap}",
        f"-Xms{cfg.kafka_heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={cfg.kafka_dir / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        *args,
    ]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start(cfg: StackConfig) -> int:
    """Start the broker unless ours already runs; format storage on first start only."""
    pid_file = cfg.kafka_dir / "kafka.pid"
    pid = read_pid(pid_file)
    if pid is not None:
        return pid
    for port in (cfg.kafka_port, cfg.controller_port):
        if port_open(port):
            raise StackError(
                f"port {port} is taken by a process the local stack did not start; stop it or set "
                "SEGSTREAM_DEVSTACK_KAFKA_PORT / SEGSTREAM_DEVSTACK_CONTROLLER_PORT"
            )
    libs = resolve_jars(cfg)
    props = cfg.kafka_dir / "server.properties"
    props.write_text(properties(cfg))
    (cfg.kafka_dir / "log4j2.properties").write_text(LOG4J2.format(log=cfg.kafka_dir / "server.log"))
    if not (cfg.kafka_dir / "data" / "meta.properties").exists():
        fmt = _java(
            cfg,
            libs,
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            f"--cluster-id={new_cluster_id()}",
            "-c",
            str(props),
        )
        result = subprocess.run(fmt, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")
    mark_start(cfg.kafka_dir / "server.log", cfg.kafka_dir / "kafka.out")
    return spawn(
        _java(cfg, libs, "kafka.Kafka", str(props)), cfg.kafka_dir / "kafka.out", pid_file, marker=str(props)
    )


def exit_reason(folder: Path, lines: int = 12) -> str:
    """What the last start wrote: the JVM's own output (a bad -Xmx, a missing class) and the broker's log
    without stack frames and the indented config dump ("Exiting Kafka due to fatal exception", the cause)."""
    shown: list[str] = []
    for name in ("kafka.out", "server.log"):
        shown += [line for line in since_start(folder / name) if line.strip() and not line[0].isspace()][
            -lines:
        ]
    return "\n".join(shown)


def wait_ready(cfg: StackConfig, pid: int, timeout: float = 90.0) -> None:
    """Ready means the broker answers a metadata request, not merely that the port is open. "Exited" is
    judged on the spawned pid, not the pid file (see `streams.devstack.redis.wait_ready`)."""
    from kafka import KafkaAdminClient  # kafka-python: only needed once the stack is asked to start

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive(pid):
            raise StackError(
                f"Kafka exited during start; see {cfg.kafka_dir / 'server.log'} and "
                f"{cfg.kafka_dir / 'kafka.out'}:\n{exit_reason(cfg.kafka_dir)}"
            )
        if port_open(cfg.kafka_port):
            try:
                admin = KafkaAdminClient(bootstrap_servers=cfg.kafka_bootstrap, request_timeout_ms=5000)
                try:
                    admin.describe_cluster()
                    admin.list_topics()
                    return
                finally:
                    admin.close()
            except Exception as exc:  # the broker is still starting: any client error means "not yet"
                last = exc
        time.sleep(0.5)
    raise StackError(f"Kafka did not answer metadata requests within {timeout:.0f}s: {last}")
