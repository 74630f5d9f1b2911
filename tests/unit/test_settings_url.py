"""The worker's start-up line names its Redis; it must never print the password in that URL."""

from __future__ import annotations

import pytest

from streams.settings import without_password


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user:s3cret@cache.local:6380/2", "redis://user:***@cache.local:6380/2"),
        ("rediss://:s3cret@cache.local/0", "rediss://:***@cache.local/0"),
        ("redis://default:p%40ss@[::1]:6379", "redis://default:***@[::1]:6379"),
        (
            "redis+cluster://u:s3cret@a:7000,b:7001,[::1]:7002/0",
            "redis+cluster://u:***@a:7000,b:7001,[::1]:7002/0",
        ),
        ("redis://user@cache.local:6380/2", "redis://user@cache.local:6380/2"),
        ("redis://cache.local:6380/2?password=s3cret", "redis://cache.local:6380/2?password=***"),
        (
            "rediss://u:s3cret@cache.local/0?socket_timeout=2&password=s3cret",
            "rediss://u:***@cache.local/0?socket_timeout=2&password=***",
        ),
    ],
)
def test_the_password_is_masked_and_the_rest_kept(url: str, shown: str) -> None:
    assert without_password(url) == shown
