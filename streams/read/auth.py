"""API keys and scopes for the HTTP read API.

The read side serves personal data, so every endpoint except `/health` (and `/openapi.json`, the public
description) needs a bearer token. Keys are configured as lines `<name> sha256:<hex digest> <scope,scope>`
in `SEGSTREAM_API_KEYS_FILE` or `SEGSTREAM_API_KEYS` (lines or `;`-separated): only the SHA-256 of a token is
ever stored, so a leaked configuration does not leak a usable key. Tokens are 256-bit random strings (made by
`segstream api-key`), which is why one unsalted SHA-256 is enough (nothing to brute-force, unlike passwords).
A presented token is hashed and compared with every configured digest by `hmac.compare_digest`, without an
early exit, so timing tells nothing about which key or how many bytes matched.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "SCOPES",
    "ApiKey",
    "Authenticator",
    "KeyConfigError",
    "new_key",
    "parse_keys",
]

SCOPES: Mapping[str, str] = {
    "segments:read": "grids, segment counts, KPIs and flows",
    "profiles:read": "one customer's segments, metrics and history",
    "members:read": "segment member listings (customer ids)",
    "pii:read": "declared data in profiles: birth year, gender, region, household",
    "metrics:read": "worker metrics (/metrics), unless SEGSTREAM_API_METRICS_PUBLIC",
}
TOKEN_PREFIX = "sgs_"


class KeyConfigError(ValueError):
    """A key line that cannot be used; the message names the line, never a digest or token."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    digest: bytes  # SHA-256 of the token
    scopes: frozenset[str]


def digest_of(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def new_key(name: str, scopes: Iterable[str]) -> tuple[str, str]:
    """A fresh token and the configuration line that accepts it (only the line is stored)."""
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise KeyConfigError(f"unknown or no scopes {unknown}; known: {', '.join(SCOPES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, f"{_check_name(name)} sha256:{digest_of(token).hex()} {','.join(wanted)}"


def _check_name(name: str) -> str:
    if not name or not name.isascii() or not all(c.isalnum() or c in "-_." for c in name):
        raise KeyConfigError("a key name is letters, digits, '-', '_' or '.'")
    return name


def parse_keys(text: str) -> tuple[ApiKey, ...]:
    """Key lines (blank lines and `#` comments ignored; `;` separates lines too, for one variable)."""
    keys: list[ApiKey] = []
    for number, raw in enumerate(text.replace(";", "\n").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or not parts[1].startswith("sha256:"):
            raise KeyConfigError(f"key line {number}: expected '<name> sha256:<64 hex digits> <scopes>'")
        name, digest_hex, scope_text = parts[0], parts[1][7:], parts[2]
        try:
            digest = bytes.fromhex(digest_hex)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise KeyConfigError(f"key line {number} ({name}): the digest must be 64 hex digits")
        scopes = frozenset(s for s in scope_text.split(",") if s)
        unknown = sorted(scopes - set(SCOPES))
        if unknown or not scopes:
            raise KeyConfigError(f"key line {number} ({name}): unknown or no scopes {unknown}")
        keys.append(ApiKey(_check_name(name), digest, scopes))
    if len({k.name for k in keys}) != len(keys):
        raise KeyConfigError("key names must be unique")
    return tuple(keys)


class Authenticator:
    """Who a request is: the key its bearer token matches, or none. `disabled()` is the explicit no-auth
    choice (every scope granted), which `streams.read.api` refuses unless bound to loopback."""

    def __init__(self, keys: Iterable[ApiKey], enabled: bool = True) -> None:
        self.keys = tuple(keys)
        self.enabled = enabled
        if enabled and not self.keys:
            raise KeyConfigError(
                "no API keys configured (SEGSTREAM_API_KEYS_FILE or SEGSTREAM_API_KEYS); "
                "make one with `segstream api-key NAME --scope ...`, or serve on loopback with --no-auth"
            )

    @classmethod
    def disabled(cls) -> Authenticator:
        return cls((), enabled=False)

    def identify(self, authorization: str | None) -> ApiKey | None:
        """The key of an `Authorization: Bearer <token>` header, None when absent or not valid."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        presented = digest_of(token.strip())
        found: ApiKey | None = None
        for key in self.keys:  # no early exit: the time taken does not depend on which key matched
            if hmac.compare_digest(presented, key.digest):
                found = key
        return found
