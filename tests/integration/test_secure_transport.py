"""The worker and the HTTP API end to end over Redis with TLS and a least-privilege ACL user (issue 12):
a private `redis-server` with a TLS port only and `user default off`; segstream's user may run only the
commands in `streams.devstack.secure_redis.COMMANDS` on keys under its prefix. The worker applies every
event, the API (HTTPS) serves what it wrote, nothing segstream sent was refused (ACL LOG), and the same user
cannot FLUSHALL, CONFIG SET, KEYS or touch a key outside its prefix."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from streams.devstack import secure_redis
from tests.integration.api_server import DECLARED, feed, free_port, serve
from tests.integration.test_api_security import get
from tests.integration.worker_harness import make_settings, stored_customers
from tests.services import Services

PREFIX = f"sec{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[secure_redis.SecureRedis]:
    try:
        server = secure_redis.start(
            tmp_path / "redis", free_port(), secrets.token_urlsafe(16), PREFIX, admin_password="adm1n"
        )
    except RuntimeError as exc:
        pytest.fail(f"private TLS Redis: {exc}")
    yield server
    server.stop()


def test_worker_and_api_over_redis_tls_with_acl_user(
    services: Services, topic_name: Callable[[str], str], tls_redis: secure_redis.SecureRedis
) -> None:
    settings = make_settings(
        services,
        topic_name,
        PREFIX,
        redis_url=tls_redis.url,
        redis_tls_ca_file=tls_redis.certs.ca,
    )
    total = feed(settings)
    assert len(stored_customers(settings)) == len(DECLARED) + 40
    with serve(settings, tls_redis.certs) as api:
        status, profile, _ = get(api, "/customers/p1", "pii")
        assert status == 200 and profile["declared"]["birth_year"] == 1984
        status, kpis, _ = get(api, "/grids/lifecycle/segments", "seg")
        assert status == 200 and sum(k["customers"] for k in kpis["segments"].values()) == len(DECLARED) + 40
        assert get(api, "/grids/lifecycle/segments/active/members?count=5", "members")[0] == 200
        status, history, _ = get(api, "/customers/p1/history", "prof")
        assert status == 200 and history["entries"]
    assert total > 0

    admin = redis.Redis(
        port=tls_redis.port,
        ssl=True,
        ssl_ca_certs=str(tls_redis.certs.ca),
        username="admin",
        password="adm1n",
    )
    try:
        denied = {(str(e["reason"]), str(e["object"])) for e in admin.acl_log()}
        assert denied <= {("command", "config|get")}, denied  # memory advice probes CONFIG GET; tolerated
        user = redis.Redis.from_url(tls_redis.url, ssl_ca_certs=str(tls_redis.certs.ca))
        for command in (
            ("FLUSHALL",),
            ("CONFIG", "SET", "maxmemory", "1"),
            ("KEYS", "*"),
            ("GET", "other:x"),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                user.execute_command(*command)  # type: ignore[no-untyped-call]
        user.close()
        plain = redis.Redis(port=tls_redis.port, socket_timeout=2)  # no TLS: the server does not answer
        with pytest.raises(redis.exceptions.ConnectionError):
            plain.ping()
    finally:
        admin.close()
