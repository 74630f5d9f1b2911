"""Programs from Debian's packages the local stack and the tests need, installed when we may (root, apt)."""

from __future__ import annotations

import os
import shutil
import subprocess

from streams.devstack.kafka import StackError


def program(name: str, package: str, path: str, install_missing: bool, advice: str = "") -> str:
    """`name` on PATH or at `path`; else Debian's `package` via apt-get when allowed; else an error."""
    found = shutil.which(name) or (path if os.path.exists(path) else None)
    if found:
        return found
    if not (install_missing and shutil.which("apt-get") is not None and os.geteuid() == 0):
        raise StackError(
            f"{name} is not installed: install Debian's package (sudo apt-get install {package}){advice}"
        )
    print(f"{name} not found: installing Debian's {package} package with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise StackError(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return path
