"""Debian's Chromium for the dashboard's browser tests and `segstream report --format pdf`.

Why Debian's package: Playwright's own browser download (`playwright install`) fetches a build from outside
the package registries; the tests drive /usr/bin/chromium instead (`executable_path`), installed here with
apt-get when we are root, as streams/devstack/redis.py installs redis-server.
"""

from __future__ import annotations

from streams.devstack.debian import program

CHROMIUM = "/usr/bin/chromium"


def binary(install_missing: bool = True) -> str:
    """The chromium executable, installing Debian's `chromium` package when allowed (root, apt-get)."""
    return program("chromium", "chromium", CHROMIUM, install_missing)
