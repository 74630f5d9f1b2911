"""API key lines: only hashes are stored, scopes are checked, malformed lines are refused by line number
without echoing a digest, and a token is identified by comparing against every key."""

from __future__ import annotations

import pytest

from streams.read.auth import Authenticator, KeyConfigError, digest_of, new_key, parse_keys


def test_a_new_key_is_accepted_by_its_line_only() -> None:
    token, line = new_key("crm", ["profiles:read", "segments:read"])
    assert token not in line and digest_of(token).hex() in line
    other_token, other_line = new_key("ops", ["metrics:read"])
    auth = Authenticator(parse_keys(f"# keys\n{line}\n\n{other_line}  # ops team\n"))
    found = auth.identify(f"Bearer {token}")
    assert found is not None and found.name == "crm" and found.scopes == {"profiles:read", "segments:read"}
    assert auth.identify(f"bearer {other_token}") is not None  # the scheme is case-insensitive
    for header in (None, "", token, f"Basic {token}", "Bearer ", f"Bearer {token}x"):
        assert auth.identify(header) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("k sha256:abc segments:read", "64 hex digits"),
        ("k md5:" + "0" * 64 + " segments:read", "expected '<name> sha256"),
        ("k sha256:" + "0" * 64 + " admin:all", "unknown or no scopes"),
        ("k sha256:" + "0" * 64 + " segments:read;k sha256:" + "1" * 64 + " pii:read", "unique"),
        ("k/1 sha256:" + "0" * 64 + " segments:read", "key name"),
    ],
)
def test_bad_key_lines_are_refused(text: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match=message):
        parse_keys(text)


def test_no_keys_means_no_server_unless_disabled() -> None:
    with pytest.raises(KeyConfigError, match="no API keys configured"):
        Authenticator(())
    assert not Authenticator.disabled().enabled
    with pytest.raises(KeyConfigError):
        new_key("x", ["everything"])
