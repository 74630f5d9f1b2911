"""A private Kafka broker (KRaft, single node) whose only client listener is SASL_SSL with SCRAM-SHA-512.

Why: production brokers authenticate clients and encrypt traffic; segstream's worker, replay and admin
commands must work with `SEGSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL`. The broker's certificate is generated
at start (streams/devstack/certs.py, PEM keystore: no JKS tooling needed), SCRAM credentials are written at
format time (`StorageTool format --add-scram`), and brokers talk to each other over the same SASL_SSL
listener as user `admin`. The controller listener stays PLAINTEXT on loopback (the quorum, not clients).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streams.devstack.certs import Certs, make_certs
from streams.devstack.config import StackConfig
from streams.devstack.kafka import LOG4J2, SINGLE_NODE, new_cluster_id, port_open, resolve_jars

MECHANISM = "SCRAM-SHA-512"


@dataclass
class SecureKafka:
    process: subprocess.Popen[bytes]
    port: int
    certs: Certs
    user: str
    password: str
    directory: Path
    admin_password: str

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _scram_jaas(user: str, password: str) -> str:
    module = "org.apache.kafka.common.security.scram.ScramLoginModule"
    return f'{module} required username="{user}" password="{password}";'


def properties(directory: Path, port: int, controller_port: int, keystore: Path, admin_password: str) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
            f"listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_SSL",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={_scram_jaas('admin', admin_password)}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={keystore}",
            "ssl.endpoint.identification.algorithm=https",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={directory / 'tls' / 'ca.pem'}",
            f"log.dirs={directory / 'data'}",
            *SINGLE_NODE,
            "auto.create.topics.enable=false",
            # Kafka ACLs: a client may do only what `grant` allowed. The controller listener is PLAINTEXT on
            # loopback: its (anonymous) principal is the broker itself talking to its quorum.
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=User:admin;User:ANONYMOUS",
            "allow.everyone.if.no.acl.found=false",
            "",
        ]
    )


def start(
    directory: Path, port: int, controller_port: int, password: str, user: str = "segstream"
) -> SecureKafka:
    """Format (with SCRAM users `user` and `admin`) and start the broker; returns once it is started."""
    from cryptography.hazmat.primitives import serialization

    cfg = StackConfig.from_env()
    libs = resolve_jars(cfg)
    directory.mkdir(parents=True, exist_ok=True)
    certs = make_certs(directory / "tls")
    key = serialization.load_pem_private_key(certs.key.read_bytes(), None)
    keystore = directory / "tls" / "keystore.pem"  # PKCS#8 key + certificate, the PEM keystore Kafka reads
    keystore.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        + certs.cert.read_bytes()
    )
    keystore.chmod(0o600)
    admin_password = password + "-admin"
    props = directory / "server.properties"
    props.write_text(properties(directory, port, controller_port, keystore, admin_password))
    (directory / "log4j2.properties").write_text(LOG4J2.format(log=directory / "server.log"))
    java = [
        "java", f"-Xmx{cfg.kafka_heap}", f"-Xms{cfg.kafka_heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={directory / 'log4j2.properties'}", "-cp", f"{libs}/*",
    ]  # fmt: skip
    fmt = subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "--standalone", f"--cluster-id={new_cluster_id()}",
         "-c", str(props), "--add-scram", f"{MECHANISM}=[name={user},password={password}]",
         "--add-scram", f"{MECHANISM}=[name=admin,password={admin_password}]"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if fmt.returncode != 0:
        raise RuntimeError(f"formatting the SASL_SSL broker failed: {fmt.stdout}{fmt.stderr}")
    out = (directory / "kafka.out").open("wb")
    process = subprocess.Popen(
        [*java, "kafka.Kafka", str(props)], stdout=out, stderr=out, start_new_session=True
    )
    out.close()
    return SecureKafka(process, port, certs, user, password, directory, admin_password)


# What segstream's user needs on its topics (worker, replay, admin commands): create the three topics and
# read their metadata, consume events, produce transitions and dead letters; and its consumer group.
TOPIC_OPERATIONS = ("CREATE", "DESCRIBE", "DESCRIBE_CONFIGS", "READ", "WRITE")
GROUP_OPERATIONS = ("READ", "DESCRIBE")


def grant(broker: SecureKafka, prefix: str) -> None:
    """Allow `broker.user` the operations above on topics and groups whose names start with `prefix`."""
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        ResourcePattern,
        ResourceType,
    )

    admin = KafkaAdminClient(
        bootstrap_servers=broker.bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism=MECHANISM,
        sasl_plain_username="admin",
        sasl_plain_password=broker.admin_password,
        ssl_cafile=str(broker.certs.ca),
    )
    acls = [
        ACL(
            f"User:{broker.user}",
            "*",
            ACLOperation[operation],
            ACLPermissionType.ALLOW,
            ResourcePattern(kind, prefix, ACLResourcePatternType.PREFIXED),
        )
        for kind, operations in (
            (ResourceType.TOPIC, TOPIC_OPERATIONS),
            (ResourceType.GROUP, GROUP_OPERATIONS),
        )
        for operation in operations
    ]
    try:
        result = admin.create_acls(acls)
        if result.get("failed"):
            raise RuntimeError(f"creating Kafka ACLs failed: {result['failed']}")
    finally:
        admin.close()


async def wait_ready(broker: SecureKafka, timeout: float = 90.0) -> None:
    """Ready when an authenticated client gets metadata over SASL_SSL."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.helpers import create_ssl_context

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            raise RuntimeError(f"SASL_SSL broker exited; see {broker.directory / 'server.log'}")
        if port_open(broker.port):
            admin = AIOKafkaAdminClient(
                bootstrap_servers=broker.bootstrap,
                security_protocol="SASL_SSL",
                sasl_mechanism=MECHANISM,
                sasl_plain_username=broker.user,
                sasl_plain_password=broker.password,
                ssl_context=create_ssl_context(cafile=str(broker.certs.ca)),
                request_timeout_ms=5000,
            )
            try:
                await admin.start()
                await admin.list_topics()
                return
            except Exception as exc:  # still starting
                last = exc
            finally:
                await admin.close()
        await asyncio.sleep(0.5)
    raise RuntimeError(f"SASL_SSL broker not ready within {timeout:.0f}s: {last}")
