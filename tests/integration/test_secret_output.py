"""A Redis password never reaches what segstream prints (docs/security.md), also when given the other way
redis-py accepts it: as the URL's `password` query argument (`redis://host:6379/0?password=...`)."""

from __future__ import annotations

import pytest

from tests.integration.test_cli_failures import closed_port, segstream

SECRET = "S3cretPw-9d1e"


@pytest.mark.parametrize("command", [["doctor"], ["namespaces"], ["customer", "c-1"], ["api", "--no-auth"]])
def test_a_password_in_the_url_query_is_never_printed(env: dict[str, str], command: list[str]) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0?password={SECRET}"
    extra = ["--port", str(closed_port())] if command[0] == "api" else []
    result = segstream([*command, *extra], env, SEGSTREAM_REDIS_URL=url)
    printed = result.stdout + result.stderr
    assert result.returncode == 4, printed
    assert SECRET not in printed and "password=***" in printed, printed
