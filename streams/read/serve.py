"""`segstream api` / `python -m streams.read.api`: the configuration, checked before the port opens.

Why a separate step: a server that starts with a broken or unsafe configuration fails later, on a request, or
worse serves personal data openly. So everything is checked before the port opens, and a failure is one line
on stderr with exit code 2: no API key configured (and no `--no-auth`), `--no-auth` on an address other than
loopback, a half-given TLS pair or unreadable certificate, broken definitions or settings. Then it waits
for Redis (up to SEGSTREAM_CONNECT_TIMEOUT_S, saying so on stdout) and gives up with one line, exit code 4.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import ssl
import sys
from dataclasses import dataclass

import redis.asyncio as aioredis
from pydantic import ValidationError

from segmentation import Definitions, DefinitionsError
from segmentation.safe_yaml import one_line
from streams.read.auth import Authenticator, KeyConfigError, parse_keys
from streams.settings import Settings, without_password
from streams.store.connection import async_client
from streams.store.reachable import ServiceUnreachable, wait_for_redis


class ServeError(ValueError):
    """A configuration the API refuses to serve with (exit code 2)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def authenticator(settings: Settings, no_auth: bool, host: str) -> Authenticator:
    if no_auth:
        if not is_loopback(host):
            raise ServeError(
                f"--no-auth is refused on {host!r}: only on loopback (127.0.0.1, ::1, localhost)"
            )
        return Authenticator.disabled()
    text = ""
    if settings.api_keys_file is not None:
        try:
            text += settings.api_keys_file.read_text(encoding="utf-8") + "\n"
        except (OSError, UnicodeDecodeError) as exc:
            raise ServeError(f"SEGSTREAM_API_KEYS_FILE: cannot read: {exc}") from None
    if settings.api_keys is not None:
        text += settings.api_keys.get_secret_value()
    return Authenticator(parse_keys(text))


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    cert, key = settings.api_tls_certfile, settings.api_tls_keyfile
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ServeError("HTTPS needs both SEGSTREAM_API_TLS_CERTFILE and SEGSTREAM_API_TLS_KEYFILE")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ServeError(f"TLS certificate / key: {exc}") from None
    return context


@dataclass(frozen=True)
class ServeConfig:
    settings: Settings
    host: str
    port: int
    auth: Authenticator
    ssl_context: ssl.SSLContext | None
    definitions: Definitions


def checked_config(argv: list[str] | None = None) -> ServeConfig | int:
    """The checked configuration, or the exit code (2, or 4: Redis unreachable) after one line on stderr."""
    parser = argparse.ArgumentParser(prog="segstream api", description="Serve the HTTP read API.")
    parser.add_argument("--host", default=None, help="default: SEGSTREAM_API_HOST or 127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: SEGSTREAM_API_PORT or 8080")
    parser.add_argument(
        "--no-auth", action="store_true", help="serve without API keys (refused unless bound to loopback)"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        host = args.host or settings.api_host
        config = ServeConfig(
            settings=settings,
            host=host,
            port=args.port if args.port is not None else settings.api_port,
            auth=authenticator(settings, args.no_auth, host),
            ssl_context=tls_context(settings),
            definitions=(
                Definitions.from_yaml(settings.definitions_file)
                if settings.definitions_file
                else Definitions.default()
            ),
        )
    except ValidationError as exc:
        fields = ", ".join("SEGSTREAM_" + "_".join(map(str, e["loc"])).upper() for e in exc.errors())
        print(one_line(f"segstream api: configuration error: invalid {fields}"), file=sys.stderr)
        return 2
    except (ServeError, KeyConfigError, DefinitionsError) as exc:
        print(one_line(f"segstream api: configuration error: {exc}"), file=sys.stderr)
        return 2
    try:
        asyncio.run(_wait_for_redis(settings))
    except ServiceUnreachable as exc:
        print(one_line(f"segstream api: {exc}"), file=sys.stderr)
        return exc.exit_code
    return config


async def _wait_for_redis(settings: Settings) -> None:
    """Started a little before Redis (a reboot, a deploy), the API waits for it rather than serve 503s."""

    def client() -> aioredis.Redis:
        timeout = settings.redis_timeout_s
        tls = settings.redis_tls()
        return async_client(
            settings.redis_url,
            settings.redis_cluster,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            **tls,
        )

    await wait_for_redis(
        client,
        without_password(settings.redis_url),
        timeout_s=settings.connect_timeout_s,
        note=lambda line: print(f"segstream api is {line}", flush=True),
    )
