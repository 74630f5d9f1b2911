"""Where the local stack lives and which ports it uses (environment overrides the defaults)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

POM = Path(__file__).with_name("pom.xml")


def kafka_version() -> str:
    """The broker version pinned in the pom, so Python and Maven never disagree."""
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", POM.read_text())
    if match is None:  # pragma: no cover - the pom ships with the package
        raise RuntimeError(f"no <kafka.version> in {POM}")
    return match.group(1).strip()


def _default_root() -> Path:
    """A source checkout keeps its stack in <repo>/.devstack (git-ignored); an install uses the cwd."""
    repo = Path(__file__).resolve().parents[2]
    return (repo if (repo / "pyproject.toml").exists() else Path.cwd()) / ".devstack"


class StackError(RuntimeError):
    """The local stack cannot start; the message says what to install or free."""


def port_from_env(name: str, default: int, highest: int = 65535, why: str = "") -> int:
    """A port from the environment: a typo in one is a one-line StackError naming the variable, where a bare
    int() ended every `devstack` command and the test session in a ValueError traceback."""
    text = os.environ.get(name, str(default)).strip()
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= highest):
        raise StackError(f"{name} must be a port number from 1 to {highest}{why}, not {text!r}")
    return int(text)


# The Redis Cluster's first port: its 3 nodes use it and the next 2, each with a bus port 10000 higher (a
# higher one ended `up --redis-cluster` in an OverflowError traceback, "port must be 0-65535").
CLUSTER_PORT_MAX = 65535 - 10000 - 2


@dataclass(frozen=True)
class StackConfig:
    root: Path
    kafka_port: int = 9092
    controller_port: int = 9093
    redis_port: int = 6379
    kafka_heap: str = "512m"
    install_missing: bool = True
    cluster_port: int = 7000  # the optional Redis Cluster: 3 primaries from here (devstack/redis_cluster.py)

    @classmethod
    def from_env(cls) -> StackConfig:
        env = os.environ
        return cls(
            root=Path(env.get("SEGSTREAM_DEVSTACK_DIR", str(_default_root()))).resolve(),
            kafka_port=port_from_env("SEGSTREAM_DEVSTACK_KAFKA_PORT", 9092),
            controller_port=port_from_env("SEGSTREAM_DEVSTACK_CONTROLLER_PORT", 9093),
            redis_port=port_from_env("SEGSTREAM_DEVSTACK_REDIS_PORT", 6379),
            cluster_port=port_from_env(
                "SEGSTREAM_DEVSTACK_CLUSTER_PORT",
                7000,
                CLUSTER_PORT_MAX,
                " (3 nodes from it, each bus + 10000)",
            ),
            kafka_heap=env.get("SEGSTREAM_DEVSTACK_KAFKA_HEAP", "512m"),
            install_missing=env.get("SEGSTREAM_DEVSTACK_INSTALL", "1") != "0",
        )

    @property
    def kafka_dir(self) -> Path:
        return self.root / "kafka"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def cluster_dir(self) -> Path:
        return self.root / "redis-cluster"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def redis_cluster_url(self) -> str:
        """The cluster for segstream (the scheme says "cluster": streams/store/connection.py)."""
        return f"redis+cluster://127.0.0.1:{self.cluster_port}"
