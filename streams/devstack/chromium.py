"""Debian's Chromium for the dashboard's browser tests and `segstream report --format pdf`.

Why Debian's package: Playwright's own browser download (`playwright install`) fetches a build from outside
the package registries; the tests drive /usr/bin/chromium instead (`executable_path`), installed here with
apt-get when we are root, as streams/devstack/redis.py installs redis-server.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from streams.devstack.kafka import StackError

CHROMIUM = "/usr/bin/chromium"


def binary(install_missing: bool = True) -> str:
    """The chromium executable, installing Debian's `chromium` package when allowed (root, apt-get)."""
    found = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if found:
        return found
    allowed = install_missing and shutil.which("apt-get") is not None and os.geteuid() == 0
    if not allowed:
        raise StackError(
            "chromium is not installed: install Debian's package (sudo apt-get install chromium)"
        )
    print("chromium not found: installing Debian's chromium package with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise StackError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return CHROMIUM
