"""`python -m streams.devstack.secure [DIR]`: a private SASL_SSL broker and a TLS + ACL Redis (foreground).

Prints the SEGSTREAM_* variables that point segstream at them (worker, replay, API), and stops both on
Ctrl-C / SIGTERM. Kafka ACLs allow the segstream user the default topic names and group only.
Ports: SEGSTREAM_DEVSTACK_SECURE_KAFKA_PORT (19092; controller +1),
SEGSTREAM_DEVSTACK_SECURE_REDIS_PORT (16380). Certificates and credentials are new at every start.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from pathlib import Path

from streams.devstack import secure_kafka, secure_redis


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0] if args else ".devstack/secure").resolve()
    kafka_port = int(os.environ.get("SEGSTREAM_DEVSTACK_SECURE_KAFKA_PORT", "19092"))
    redis_port = int(os.environ.get("SEGSTREAM_DEVSTACK_SECURE_REDIS_PORT", "16380"))
    prefix = os.environ.get("SEGSTREAM_KEY_PREFIX", "segstream")
    redis_server = secure_redis.start(directory / "redis", redis_port, secrets.token_urlsafe(16), prefix)
    broker = secure_kafka.start(directory / "kafka", kafka_port, kafka_port + 1, secrets.token_urlsafe(16))
    try:
        asyncio.run(secure_kafka.wait_ready(broker))
        for name in ("customer-events", "segment-transitions", "segstream"):  # default topics and group
            secure_kafka.grant(broker, name)
        print(
            f"SEGSTREAM_KAFKA_BOOTSTRAP={broker.bootstrap}\nSEGSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL\n"
            f"SEGSTREAM_KAFKA_SASL_MECHANISM={secure_kafka.MECHANISM}\n"
            f"SEGSTREAM_KAFKA_SASL_USERNAME={broker.user}\nSEGSTREAM_KAFKA_SASL_PASSWORD={broker.password}\n"
            f"SEGSTREAM_KAFKA_SSL_CAFILE={broker.certs.ca}\nSEGSTREAM_REDIS_URL={redis_server.url}\n"
            f"SEGSTREAM_REDIS_TLS_CA_FILE={redis_server.certs.ca}\nSEGSTREAM_KEY_PREFIX={prefix}",
            flush=True,
        )
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
        redis_server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
