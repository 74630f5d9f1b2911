"""A private Redis with TLS only (no plaintext port) and an ACL user limited to segstream's commands and keys.

Why: production Redis is reached over the network; segstream must work with `rediss://` and a user that can
run only what segstream runs, on its own key prefix only, so a stolen password cannot FLUSHALL, read other
applications' keys, reconfigure the server or run arbitrary modules. The ACL line is `acl_rule()`;
docs/security.md shows it. Certificates are generated at start (streams/devstack/certs.py).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streams.devstack.certs import Certs, make_certs
from streams.devstack.config import StackConfig
from streams.devstack.redis import binary as redis_binary

# Every command segstream sends (worker, replay, admin commands, read side), and every command its commit
# script runs (ACLs apply inside Lua too): checked by tests/integration/test_secure_transport.py with ACL LOG.
# Nothing @dangerous (CONFIG, KEYS, FLUSHALL, DEBUG, MODULE...). CONFIG GET, which `segstream worker` tries
# for its memory advice, is refused and the advice skipped. SCAN is not restricted by key patterns in Redis
# (it lists names of the whole database): `segstream namespaces` / `drop` need it.
COMMANDS = (
    "auth", "hello", "ping", "select",                                       # connection
    "evalsha", "script|load", "multi", "exec",                               # commit script, pipelines
    "hgetall", "hget", "hmget", "hset", "hdel", "hincrby",                   # hashes: customer, meta, KPIs
    "bitfield", "getrange", "setrange",                                      # membership bitmaps
    "rpush", "ltrim", "lrange",                                              # definitions log
    "zadd", "zrem", "zrangebyscore",                                         # due index
    "sadd", "smembers",                                                      # the weeks with day counters
    "get", "set", "exists", "type", "del", "unlink", "scan", "memory|usage",  # pointer, namespaces
    "info",                                                                  # maxmemory-policy check
)  # fmt: skip


def acl_rule(user: str, password: str, prefix: str) -> str:
    """The ACL line of segstream's user: its commands only, keys under `<prefix>:` only, no channels."""
    commands = " ".join(f"+{c}" for c in COMMANDS)
    return f"user {user} on >{password} resetkeys ~{prefix}:* resetchannels -@all {commands}"


@dataclass
class SecureRedis:
    process: subprocess.Popen[bytes]
    port: int
    certs: Certs
    user: str
    password: str

    @property
    def url(self) -> str:
        return f"rediss://{self.user}:{self.password}@127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start(
    directory: Path, port: int, password: str, prefix: str, user: str = "segstream", admin_password: str = ""
) -> SecureRedis:
    """redis-server on 127.0.0.1:`port`, TLS only, default user off (or an admin when `admin_password`)."""
    directory.mkdir(parents=True, exist_ok=True)
    certs = make_certs(directory / "tls")
    admin = f"user admin on >{admin_password} ~* &* +@all" if admin_password else ""
    acl = directory / "users.acl"
    acl.write_text("\n".join(["user default off", acl_rule(user, password, prefix), admin]) + "\n")
    acl.chmod(0o600)
    argv = [
        redis_binary(StackConfig.from_env()),
        "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(port),
        "--tls-cert-file", str(certs.cert), "--tls-key-file", str(certs.key),
        "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "no",
        "--aclfile", str(acl), "--dir", str(directory), "--save", "",
        "--appendonly", "no", "--hash-max-listpack-value", "4096", "--logfile", str(directory / "redis.log"),
    ]  # fmt: skip
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    server = SecureRedis(process, port, certs, user, password)
    _wait(server)
    return server


def _wait(server: SecureRedis, timeout: float = 20.0) -> None:
    import redis

    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(server.url, ssl_ca_certs=str(server.certs.ca), socket_timeout=1)
    try:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server (TLS) exited; see {server.certs.ca.parent.parent / 'redis.log'}"
                )
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError("redis-server (TLS) did not answer within 20 s")
